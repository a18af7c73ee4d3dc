"""Verifying an email address through HTTP and a real SMTP server: the welcome's link, a new link
on request, and every way a token can fail (400, nothing changed)."""

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.config import Settings
from app.main import create_app
from app.models import AccountToken, User
from tests.conftest import Serve
from tests.factories import DEFAULT_PASSWORD, auth_headers, bearer, login, make_user
from tests.helpers import assert_problem, capture_logs, stored_user, unspent_tokens
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
REQUEST = "/api/v1/auth/verify-email/request"
CONFIRM = "/api/v1/auth/verify-email/confirm"
RESET_REQUEST = "/api/v1/auth/password-reset/request"
ANN = {"username": "ann", "email": "ann@example.com", "password": DEFAULT_PASSWORD}
VERIFICATION_ACCEPTED = {
    "detail": (
        "A message with a verification link is on its way to the account's address, unless "
        "that address has been sent too many lately."
    )
}


@pytest.fixture
def settings(settings: Settings, smtp_server: SmtpServer) -> Settings:
    """The app of these tests mails through this test's SMTP server."""
    return smtp_settings(settings, smtp_server)


async def sign_up(client: httpx.AsyncClient, account: dict[str, str] = ANN) -> int:
    response = await client.post(USERS, json=account)
    assert response.status_code == 201, response.text
    user_id: int = response.json()["id"]
    return user_id


async def welcome_token(app: FastAPI, smtp_server: SmtpServer, address: str) -> str:
    [welcome] = mail_to(await delivered(app, smtp_server), address)
    return link_token(welcome, VERIFY_EMAIL_PATH)


async def test_the_welcome_of_a_new_account_carries_a_link_that_verifies_its_address(
    app: FastAPI, client: httpx.AsyncClient, smtp_server: SmtpServer, session: AsyncSession
) -> None:
    user_id = await sign_up(client)
    [welcome] = await delivered(app, smtp_server)
    token = link_token(welcome, VERIFY_EMAIL_PATH)
    headers = bearer((await login(client, "ann"))["access_token"])
    # Unverified, the account works as any other.
    unverified = await client.get(ME, headers=headers)
    wrote = await client.post(
        "/api/v1/posts/", json={"title": "T", "content": "C"}, headers=headers
    )

    confirmed = await client.post(CONFIRM, json={"token": token})

    assert welcome.rcpt_tos == ("ann@example.com",)
    assert welcome.message["Subject"] == "Welcome to Quill, ann"
    assert "within 48 hours" in welcome.text
    assert unverified.json()["email_verified"] is False
    assert wrote.status_code == 201, wrote.text
    assert confirmed.status_code == 204, confirmed.text
    assert confirmed.content == b""
    assert (await client.get(ME, headers=headers)).json()["email_verified"] is True
    assert (await stored_user(session, user_id)).email_verified is True


async def test_a_verification_link_works_once(
    app: FastAPI, client: httpx.AsyncClient, smtp_server: SmtpServer, session: AsyncSession
) -> None:
    user_id = await sign_up(client)
    token = await welcome_token(app, smtp_server, "ann@example.com")

    first = await client.post(CONFIRM, json={"token": token})
    second = await client.post(CONFIRM, json={"token": token})

    assert first.status_code == 204, first.text
    body = assert_problem(second, 400, "token_invalid")
    assert token not in second.text
    assert body["detail"].startswith("The token is not valid")
    assert await unspent_tokens(session, user_id) == 0


async def test_a_new_link_on_request_verifies_the_address_and_says_so_alike_every_time(
    app: FastAPI, client: httpx.AsyncClient, smtp_server: SmtpServer, session: AsyncSession
) -> None:
    ann = await make_user(session, username="ann")
    headers = await auth_headers(client, ann)

    requested = await client.post(REQUEST, headers=headers)
    [mail] = await delivered(app, smtp_server)
    confirmed = await client.post(CONFIRM, json={"token": link_token(mail, VERIFY_EMAIL_PATH)})
    again = await client.post(REQUEST, headers=headers)

    assert requested.status_code == 202, requested.text
    assert requested.json() == VERIFICATION_ACCEPTED
    assert requested.headers["content-type"] == "application/json"
    assert mail.rcpt_tos == ("ann@example.com",)
    assert mail.message["Subject"] == "Confirm your email address for Quill"
    assert confirmed.status_code == 204, confirmed.text
    assert (await stored_user(session, ann.id)).email_verified is True
    # Verified: nothing more to send, and the caller is told.
    assert_problem(again, 409, "email_already_verified")
    assert await outbox_recipients(app) == ["ann@example.com"]


async def test_links_mailed_earlier_keep_working_after_a_new_one_is_requested(
    app: FastAPI, client: httpx.AsyncClient, smtp_server: SmtpServer, session: AsyncSession
) -> None:
    user_id = await sign_up(client)
    headers = bearer((await login(client, "ann"))["access_token"])
    requested = await client.post(REQUEST, headers=headers)
    welcome, verification = await delivered(app, smtp_server)
    tokens = {link_token(mail, VERIFY_EMAIL_PATH) for mail in (welcome, verification)}
    welcome_link = link_token(welcome, VERIFY_EMAIL_PATH)

    confirmed = await client.post(CONFIRM, json={"token": welcome_link})

    assert requested.status_code == 202, requested.text
    assert len(tokens) == 2
    assert confirmed.status_code == 204, confirmed.text
    assert (await stored_user(session, user_id)).email_verified is True


async def test_requesting_a_link_needs_a_sign_in(
    app: FastAPI, client: httpx.AsyncClient, session: AsyncSession
) -> None:
    await make_user(session, username="ann")

    anonymous = await client.post(REQUEST)
    bad_token = await client.post(REQUEST, headers=bearer("not-a-token"))

    assert_problem(anonymous, 401, "not_authenticated")
    assert_problem(bad_token, 401, "invalid_token")
    assert await outbox_recipients(app) == []


async def expire_tokens(session: AsyncSession, user_id: int) -> None:
    """As if the links of the user had been mailed long enough ago."""
    passed = datetime.now(UTC) - timedelta(seconds=1)
    await session.execute(
        update(AccountToken).where(AccountToken.user_id == user_id).values(expires_at=passed)
    )
    await session.commit()


def tampered(token: str) -> str:
    """The token with one character changed: the shape is right, the token is not."""
    return ("B" if token[0] == "A" else "A") + token[1:]


@pytest.mark.parametrize(
    ("case", "code"),
    [
        ("expired", "token_expired"),
        ("tampered", "token_invalid"),
        ("wrong-purpose", "token_invalid"),
        ("unknown", "token_invalid"),
        ("too-short", "token_invalid"),
        ("not-url-safe", "token_invalid"),
        ("not-ascii", "token_invalid"),
        ("whitespace-around", "token_invalid"),
    ],
)
async def test_a_token_that_cannot_be_used_is_a_400_and_verifies_nothing(
    app: FastAPI,
    client: httpx.AsyncClient,
    smtp_server: SmtpServer,
    session: AsyncSession,
    case: str,
    code: str,
) -> None:
    user_id = await sign_up(client)
    assert (await client.post(RESET_REQUEST, json={"email": "ann@example.com"})).status_code == 202
    welcome, reset = await delivered(app, smtp_server)
    token = link_token(welcome, VERIFY_EMAIL_PATH)
    if case == "expired":
        await expire_tokens(session, user_id)
    unspent = await unspent_tokens(session, user_id)
    presented = {
        "expired": token,
        "tampered": tampered(token),
        "wrong-purpose": link_token(reset, RESET_PASSWORD_PATH),
        "unknown": "A" * 43,
        "too-short": token[:-1],
        "not-url-safe": token[:-1] + "+",
        "not-ascii": token[:-1] + "é",
        "whitespace-around": f" {token} ",
    }[case]

    response = await client.post(CONFIRM, json={"token": presented})

    assert_problem(response, 400, code)
    assert token not in response.text
    assert (await stored_user(session, user_id)).email_verified is False
    assert await unspent_tokens(session, user_id) == unspent
    if case != "expired":
        # Not spent either: the mailed link still works.
        assert (await client.post(CONFIRM, json={"token": token})).status_code == 204


async def test_a_link_to_an_address_the_account_no_longer_has_verifies_nothing(
    app: FastAPI, client: httpx.AsyncClient, smtp_server: SmtpServer, session: AsyncSession
) -> None:
    user_id = await sign_up(client)
    token = await welcome_token(app, smtp_server, "ann@example.com")
    # Changed outside the API (by an operator), so nothing voided the link: it still names the
    # old address, and must not vouch for the new one.
    await session.execute(update(User).where(User.id == user_id).values(email="new@example.com"))
    await session.commit()

    response = await client.post(CONFIRM, json={"token": token})

    assert_problem(response, 400, "token_invalid")
    assert (await stored_user(session, user_id)).email_verified is False
    assert await unspent_tokens(session, user_id) == 1


async def test_the_link_of_a_deactivated_account_verifies_nothing(
    app: FastAPI, client: httpx.AsyncClient, smtp_server: SmtpServer, session: AsyncSession
) -> None:
    user_id = await sign_up(client)
    token = await welcome_token(app, smtp_server, "ann@example.com")
    await session.execute(update(User).where(User.id == user_id).values(is_active=False))
    await session.commit()

    response = await client.post(CONFIRM, json={"token": token})

    assert_problem(response, 400, "token_invalid")
    assert (await stored_user(session, user_id)).email_verified is False
    assert await unspent_tokens(session, user_id) == 1


@pytest.mark.parametrize(
    "body",
    [
        pytest.param({}, id="no-token"),
        pytest.param({"token": None}, id="null"),
        pytest.param({"token": 7}, id="not-a-string"),
        pytest.param({"token": ""}, id="empty"),
        pytest.param({"token": "A" * 129}, id="too-long"),
        pytest.param({"token": "{token}\ud800"}, id="lone-surrogate"),
        pytest.param({"token": "{token}", "email": "eve@example.com"}, id="unknown-field"),
    ],
)
async def test_an_invalid_body_is_a_422_and_changes_nothing(
    app: FastAPI,
    client: httpx.AsyncClient,
    smtp_server: SmtpServer,
    session: AsyncSession,
    body: dict[str, Any],
) -> None:
    user_id = await sign_up(client)
    token = await welcome_token(app, smtp_server, "ann@example.com")
    sent = {
        key: value.replace("{token}", token) if isinstance(value, str) else value
        for key, value in body.items()
    }

    # As JSON escapes: httpx would not encode a lone surrogate as UTF-8.
    response = await client.post(
        CONFIRM, content=json.dumps(sent), headers={"Content-Type": "application/json"}
    )

    assert_problem(response, 422, "validation_failed")
    assert token not in response.text
    assert (await stored_user(session, user_id)).email_verified is False
    assert await unspent_tokens(session, user_id) == 1


async def test_verification_requests_are_limited_per_address_and_answered_alike_beyond(
    settings: Settings, serve: Serve, smtp_server: SmtpServer, session: AsyncSession
) -> None:
    ann = await make_user(session, username="ann")
    app = create_app(settings.model_copy(update={"RATE_LIMIT_MAIL_ADDRESS": "2/hour"}))
    async with serve(app) as client:
        headers = await auth_headers(client, ann)
        responses = [await client.post(REQUEST, headers=headers) for _ in range(3)]
        received = await delivered(app, smtp_server)

    assert [response.status_code for response in responses] == [202, 202, 202]
    assert [response.json() for response in responses] == [VERIFICATION_ACCEPTED] * 3
    assert len(mail_to(received, "ann@example.com")) == 2
    assert len(received) == 2


async def test_verification_links_and_addresses_never_reach_the_logs(
    app: FastAPI, client: httpx.AsyncClient, smtp_server: SmtpServer
) -> None:
    with capture_logs() as logs:
        await sign_up(client)
        token = await welcome_token(app, smtp_server, "ann@example.com")
        await client.post(CONFIRM, json={"token": token})
        await client.post(CONFIRM, json={"token": token})

    assert {"auth.email_verified", "auth.account_token_rejected"} <= {e["event"] for e in logs}
    assert token not in repr(logs)
    assert "ann@example.com" not in repr(logs)
