"""The mail that changes of an account send, through HTTP and a real SMTP server: a sign-up's
welcome (none for a sign-up that fails), and an email change's verification to the new address
and notice to the old one."""

from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.auth.dependencies import AccountMailDep, PasswordHasherDep, PasswordPolicyDep
from app.core.config import Settings
from app.core.db import SessionDep
from app.main import create_app
from app.models import User
from app.users import service as users_service
from app.users.schemas import UserCreate
from tests.conftest import Serve
from tests.factories import DEFAULT_PASSWORD, bearer, login, make_user
from tests.helpers import assert_problem, count_rows, stored_user
from tests.mail.conftest import smtp_settings
from tests.mail.smtp_server import SmtpServer
from tests.mailbox import (
    RESET_PASSWORD_PATH,
    VERIFY_EMAIL_PATH,
    delivered,
    link_token,
    mail_to,
    outbox_recipients,
)

USERS = "/api/v1/users/"
ME = "/api/v1/users/me"
VERIFY_CONFIRM = "/api/v1/auth/verify-email/confirm"
RESET_CONFIRM = "/api/v1/auth/password-reset/confirm"
NEW_PASSWORD = "a brand new passphrase"


@pytest.fixture
def settings(settings: Settings, smtp_server: SmtpServer) -> Settings:
    """The app of these tests mails through this test's SMTP server."""
    return smtp_settings(settings, smtp_server)


def sign_up_that_fails_after_its_mail(settings: Settings) -> FastAPI:
    """The app with a route that signs up as POST /users/ does, then fails in the same unit of
    work: its welcome is in the outbox by then."""
    app = create_app(settings)

    @app.post("/test/sign-up-then-fail")
    async def sign_up_then_fail(
        data: UserCreate,
        session: SessionDep,
        hasher: PasswordHasherDep,
        policy: PasswordPolicyDep,
        mail: AccountMailDep,
    ) -> None:
        await users_service.register(
            session,
            hasher,
            policy,
            mail,
            username=data.username,
            email=data.email,
            password=data.password,
        )
        raise RuntimeError("the request failed after the welcome was queued")

    return app


async def test_a_sign_up_that_fails_after_its_welcome_was_queued_sends_nothing(
    settings: Settings, serve: Serve, smtp_server: SmtpServer
) -> None:
    app = sign_up_that_fails_after_its_mail(settings)
    ann = {"username": "ann", "email": "ann@example.com", "password": DEFAULT_PASSWORD}
    bob = {"username": "bob", "email": "bob@example.com", "password": DEFAULT_PASSWORD}
    async with serve(app) as client:
        failed = await client.post("/test/sign-up-then-fail", json=ann)
        # A commit wakes the dispatcher: had ann's welcome been kept, it would go too.
        signed_up = await client.post(USERS, json=bob)
        received = await delivered(app, smtp_server)
        recipients = await outbox_recipients(app)
        async with app.state.database.transaction(read_only=True) as session:
            users = list(await session.scalars(select(User.username)))

    assert_problem(failed, 500, "internal_error")
    assert signed_up.status_code == 201, signed_up.text
    assert users == ["bob"]
    assert [mail.rcpt_tos for mail in received] == [("bob@example.com",)]
    assert recipients == ["bob@example.com"]


async def test_a_sign_up_refused_sends_nothing(
    app: FastAPI, client: httpx.AsyncClient, session: AsyncSession
) -> None:
    await make_user(session, username="ann")

    taken = await client.post(
        USERS, json={"username": "ann", "email": "other@example.com", "password": DEFAULT_PASSWORD}
    )
    invalid = await client.post(
        USERS, json={"username": "bob", "email": "bob@example.com", "password": "short"}
    )

    assert_problem(taken, 409, "username_taken")
    assert_problem(invalid, 422, "validation_failed")
    assert await outbox_recipients(app) == []


async def change_email(
    client: httpx.AsyncClient, headers: dict[str, str], email: str, **more: str
) -> httpx.Response:
    return await client.patch(
        ME, json={"email": email, "current_password": DEFAULT_PASSWORD, **more}, headers=headers
    )


async def test_a_new_address_is_in_force_unverified_and_both_addresses_hear_of_it(
    app: FastAPI, client: httpx.AsyncClient, smtp_server: SmtpServer, session: AsyncSession
) -> None:
    ann = await make_user(session, username="ann")
    ann.email_verified = True
    await session.commit()
    headers = bearer((await login(client, "ann"))["access_token"])

    changed = await change_email(client, headers, "Ann.New@Example.com")
    received = await delivered(app, smtp_server)
    [verification] = mail_to(received, "ann.new@example.com")
    [notice] = mail_to(received, "ann@example.com")
    confirmed = await client.post(
        VERIFY_CONFIRM, json={"token": link_token(verification, VERIFY_EMAIL_PATH)}
    )

    assert changed.status_code == 200, changed.text
    assert (changed.json()["email"], changed.json()["email_verified"]) == (
        "ann.new@example.com",
        False,
    )
    assert len(received) == 2
    assert verification.message["Subject"] == "Confirm your email address for Quill"
    assert notice.message["Subject"] == "The email address of your Quill account was changed"
    assert "ann.new@example.com" in notice.text
    assert "within 60 minutes, set a new password with this link" in notice.text
    assert "change the email address of the account back" in notice.text
    assert confirmed.status_code == 204, confirmed.text
    stored = await stored_user(session, ann.id)
    assert (stored.email, stored.email_verified) == ("ann.new@example.com", True)


async def test_the_notice_lets_the_old_address_take_the_account_back(
    app: FastAPI, client: httpx.AsyncClient, smtp_server: SmtpServer, session: AsyncSession
) -> None:
    await make_user(session, username="ann")
    # Eve knows ann's password, and moves the account to her own address.
    eve = bearer((await login(client, "ann"))["access_token"])
    assert (await change_email(client, eve, "eve@example.com")).status_code == 200
    [notice] = mail_to(await delivered(app, smtp_server), "ann@example.com")

    reset = await client.post(
        RESET_CONFIRM,
        json={"token": link_token(notice, RESET_PASSWORD_PATH), "new_password": NEW_PASSWORD},
    )
    ann = bearer((await login(client, "ann", NEW_PASSWORD))["access_token"])
    back = await client.patch(
        ME, json={"email": "ann@example.com", "current_password": NEW_PASSWORD}, headers=ann
    )

    assert reset.status_code == 204, reset.text
    assert_problem(await client.get(ME, headers=eve), 401, "invalid_token")
    assert back.status_code == 200, back.text
    assert back.json()["email"] == "ann@example.com"


async def test_the_links_mailed_to_the_old_address_verify_nothing_once_it_changed(
    app: FastAPI, client: httpx.AsyncClient, smtp_server: SmtpServer, session: AsyncSession
) -> None:
    signed_up = await client.post(
        USERS, json={"username": "ann", "email": "ann@example.com", "password": DEFAULT_PASSWORD}
    )
    [welcome] = await delivered(app, smtp_server)
    headers = bearer((await login(client, "ann"))["access_token"])
    assert (await change_email(client, headers, "new@example.com")).status_code == 200

    response = await client.post(
        VERIFY_CONFIRM, json={"token": link_token(welcome, VERIFY_EMAIL_PATH)}
    )

    assert_problem(response, 400, "token_invalid")
    assert (await stored_user(session, signed_up.json()["id"])).email_verified is False


async def test_an_email_change_voids_the_old_addresss_links_even_if_the_address_comes_back(
    app: FastAPI, client: httpx.AsyncClient, smtp_server: SmtpServer, session: AsyncSession
) -> None:
    signed_up = await client.post(
        USERS, json={"username": "ann", "email": "ann@example.com", "password": DEFAULT_PASSWORD}
    )
    headers = bearer((await login(client, "ann"))["access_token"])
    assert (await change_email(client, headers, "new@example.com")).status_code == 200
    assert (await change_email(client, headers, "ann@example.com")).status_code == 200
    to_ann = mail_to(await delivered(app, smtp_server), "ann@example.com")
    [welcome] = [mail for mail in to_ann if mail.message["Subject"] == "Welcome to Quill, ann"]
    [verification] = [
        mail for mail in to_ann if mail.message["Subject"] == "Confirm your email address for Quill"
    ]

    with_welcome = await client.post(
        VERIFY_CONFIRM, json={"token": link_token(welcome, VERIFY_EMAIL_PATH)}
    )
    with_verification = await client.post(
        VERIFY_CONFIRM, json={"token": link_token(verification, VERIFY_EMAIL_PATH)}
    )

    assert_problem(with_welcome, 400, "token_invalid")
    assert with_verification.status_code == 204, with_verification.text
    assert (await stored_user(session, signed_up.json()["id"])).email_verified is True


async def test_changing_the_address_and_the_password_at_once_keeps_the_notices_link_working(
    app: FastAPI, client: httpx.AsyncClient, smtp_server: SmtpServer, session: AsyncSession
) -> None:
    await make_user(session, username="ann")
    headers = bearer((await login(client, "ann"))["access_token"])

    changed = await change_email(client, headers, "eve@example.com", password="eve's password")
    [notice] = mail_to(await delivered(app, smtp_server), "ann@example.com")
    reset = await client.post(
        RESET_CONFIRM,
        json={"token": link_token(notice, RESET_PASSWORD_PATH), "new_password": NEW_PASSWORD},
    )

    assert changed.status_code == 200, changed.text
    assert reset.status_code == 204, reset.text
    assert (await client.get(ME, headers=headers)).status_code == 401


@pytest.mark.parametrize(
    ("changes", "status", "code"),
    [
        pytest.param(
            {"email": "new@example.com", "current_password": "not the password"},
            403,
            "wrong_current_password",
            id="wrong-current-password",
        ),
        pytest.param(
            {"email": "bob@example.com", "current_password": DEFAULT_PASSWORD},
            409,
            "email_taken",
            id="address-taken",
        ),
        pytest.param({"email": "new@example.com"}, 422, "validation_failed", id="no-password"),
    ],
)
async def test_a_refused_email_change_sends_nothing(
    app: FastAPI,
    client: httpx.AsyncClient,
    session: AsyncSession,
    changes: dict[str, Any],
    status: int,
    code: str,
) -> None:
    ann = await make_user(session, username="ann")
    await make_user(session, username="bob")
    headers = bearer((await login(client, "ann"))["access_token"])

    response = await client.patch(ME, json=changes, headers=headers)

    assert_problem(response, status, code)
    assert await outbox_recipients(app) == []
    assert (await stored_user(session, ann.id)).email == "ann@example.com"


@pytest.mark.parametrize(
    "changes",
    [
        pytest.param({"bio": "Gardens."}, id="profile"),
        pytest.param({"email": "ann@example.com", "current_password": DEFAULT_PASSWORD}, id="same"),
        pytest.param(
            {"password": NEW_PASSWORD, "current_password": DEFAULT_PASSWORD}, id="password"
        ),
    ],
)
async def test_changes_that_leave_the_address_as_it_is_send_nothing(
    app: FastAPI, client: httpx.AsyncClient, session: AsyncSession, changes: dict[str, Any]
) -> None:
    ann = await make_user(session, username="ann")
    ann.email_verified = True
    await session.commit()
    headers = bearer((await login(client, "ann"))["access_token"])

    response = await client.patch(ME, json=changes, headers=headers)

    assert response.status_code == 200, response.text
    assert response.json()["email_verified"] is True
    assert await outbox_recipients(app) == []


async def test_signing_up_queues_the_welcome_in_its_own_unit_of_work(
    app: FastAPI, client: httpx.AsyncClient, session: AsyncSession
) -> None:
    response = await client.post(
        USERS, json={"username": "ann", "email": "ann@example.com", "password": DEFAULT_PASSWORD}
    )

    # The 201 was sent after the commit: the welcome was committed with the account.
    assert response.status_code == 201, response.text
    assert await outbox_recipients(app) == ["ann@example.com"]
    statement = select(func.count()).select_from(User)
    assert await count_rows(session, statement) == 1


async def test_the_messages_state_how_long_their_links_work_never_longer_than_they_do(
    settings: Settings, serve: Serve, smtp_server: SmtpServer, session: AsyncSession
) -> None:
    await make_user(session, username="ann")
    lifetimes = {"VERIFY_TOKEN_TTL_SECONDS": 5400, "RESET_TOKEN_TTL_SECONDS": 90}
    app = create_app(settings.model_copy(update=lifetimes))
    async with serve(app) as client:
        headers = bearer((await login(client, "ann"))["access_token"])
        assert (await change_email(client, headers, "new@example.com")).status_code == 200
        received = await delivered(app, smtp_server)

    [verification] = mail_to(received, "new@example.com")
    [notice] = mail_to(received, "ann@example.com")
    # An hour and a half, and a minute and a half: each rounded down, in the singular.
    assert "within 1 hour:" in verification.text
    assert "within 1 minute, set a new password" in notice.text
