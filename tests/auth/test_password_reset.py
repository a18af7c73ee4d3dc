"""Resetting a password through HTTP and a real SMTP server: a request that tells nobody whether
an account exists, a link that works once and ends every login, the limits on asking, and every
way a token can fail (400, nothing changed)."""

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.config import Settings
from app.main import create_app
from app.models import AccountToken, User
from tests.conftest import Serve
from tests.factories import DEFAULT_PASSWORD, bearer, login, make_user
from tests.helpers import (
    assert_problem,
    capture_logs,
    connections_during_hashing,
    unspent_tokens,
)
from tests.mail.conftest import smtp_settings
from tests.mail.smtp_server import ReceivedMail, SmtpServer
from tests.mailbox import (
    RESET_PASSWORD_PATH,
    VERIFY_EMAIL_PATH,
    delivered,
    link_token,
    mail_to,
    outbox_recipients,
)
from tests.redis_server import RedisServer

TOKEN = "/api/v1/auth/token"
REFRESH = "/api/v1/auth/refresh"
ME = "/api/v1/users/me"
REQUEST = "/api/v1/auth/password-reset/request"
CONFIRM = "/api/v1/auth/password-reset/confirm"
VERIFY_REQUEST = "/api/v1/auth/verify-email/request"
NEW_PASSWORD = "a brand new passphrase"
RESET_ACCEPTED = {
    "detail": (
        "If an active account has this address, a message with a reset link is on its way to "
        "it, unless that address has been sent too many lately."
    )
}


@pytest.fixture
def settings(settings: Settings, smtp_server: SmtpServer) -> Settings:
    """The app of these tests mails through this test's SMTP server."""
    return smtp_settings(settings, smtp_server)


@asynccontextmanager
async def client_at(app: FastAPI, address: str) -> AsyncIterator[httpx.AsyncClient]:
    """A client whose requests come from `address`, as the server would report it."""
    transport = httpx.ASGITransport(app=app, client=(address, 50000))
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        yield client


async def request_reset(client: httpx.AsyncClient, email: str) -> httpx.Response:
    return await client.post(REQUEST, json={"email": email})


async def sign_in_status(client: httpx.AsyncClient, username: str, password: str) -> int:
    response = await client.post(TOKEN, data={"username": username, "password": password})
    return response.status_code


async def stored_password_hash(session: AsyncSession, user_id: int) -> str:
    statement = select(User.hashed_password).where(User.id == user_id)
    hashed = await session.scalar(statement)
    await session.commit()  # end the read: on SQLite it would hold up the app's writes
    assert hashed is not None
    return hashed


def reset_token(mail: ReceivedMail) -> str:
    assert mail.message["Subject"] == "Reset your Quill password"
    return link_token(mail, RESET_PASSWORD_PATH)


async def test_a_request_is_answered_alike_for_any_address_and_mails_only_an_active_account(
    app: FastAPI, client: httpx.AsyncClient, smtp_server: SmtpServer, session: AsyncSession
) -> None:
    await make_user(session, username="ann")
    await make_user(session, username="ivy", is_active=False)

    responses = [
        await request_reset(client, address)
        for address in ("ann@example.com", "nobody@example.com", "ivy@example.com")
    ]
    received = await delivered(app, smtp_server)

    assert [response.status_code for response in responses] == [202, 202, 202]
    assert [response.json() for response in responses] == [RESET_ACCEPTED] * 3
    assert len({response.headers["content-length"] for response in responses}) == 1
    [mail] = received
    assert mail.rcpt_tos == ("ann@example.com",)
    assert "within 60 minutes" in mail.text
    assert await outbox_recipients(app) == ["ann@example.com"]


async def test_the_address_is_matched_whatever_its_case(
    app: FastAPI, client: httpx.AsyncClient, smtp_server: SmtpServer, session: AsyncSession
) -> None:
    await make_user(session, username="ann")

    response = await request_reset(client, "Ann@Example.COM")

    assert response.status_code == 202, response.text
    [mail] = await delivered(app, smtp_server)
    assert mail.rcpt_tos == ("ann@example.com",)


async def test_the_link_sets_the_password_and_ends_every_login_before_it(
    app: FastAPI, client: httpx.AsyncClient, smtp_server: SmtpServer, session: AsyncSession
) -> None:
    ann = await make_user(session, username="ann")
    logins = [await login(client, "ann") for _ in range(2)]
    await request_reset(client, "ann@example.com")
    [mail] = await delivered(app, smtp_server)

    response = await client.post(
        CONFIRM, json={"token": reset_token(mail), "new_password": NEW_PASSWORD}
    )

    assert response.status_code == 204, response.text
    assert response.content == b""
    assert await sign_in_status(client, "ann", DEFAULT_PASSWORD) == 401
    for tokens in logins:
        assert_problem(
            await client.get(ME, headers=bearer(tokens["access_token"])), 401, "invalid_token"
        )
        refreshed = await client.post(REFRESH, json={"refresh_token": tokens["refresh_token"]})
        assert_problem(refreshed, 401, "invalid_token")
    after = await login(client, "ann", NEW_PASSWORD)
    assert (await client.get(ME, headers=bearer(after["access_token"]))).json()["id"] == ann.id
    assert await unspent_tokens(session, ann.id) == 0


async def test_a_newer_link_voids_the_older_one(
    app: FastAPI, client: httpx.AsyncClient, smtp_server: SmtpServer, session: AsyncSession
) -> None:
    await make_user(session, username="ann")
    await request_reset(client, "ann@example.com")
    await request_reset(client, "ann@example.com")
    older, newer = await delivered(app, smtp_server)

    with_older = await client.post(
        CONFIRM, json={"token": reset_token(older), "new_password": "the older link's password"}
    )
    with_newer = await client.post(
        CONFIRM, json={"token": reset_token(newer), "new_password": NEW_PASSWORD}
    )

    assert_problem(with_older, 400, "token_invalid")
    assert with_newer.status_code == 204, with_newer.text
    assert await sign_in_status(client, "ann", "the older link's password") == 401
    assert await sign_in_status(client, "ann", NEW_PASSWORD) == 200


async def test_a_password_change_voids_the_links_mailed_before_it(
    app: FastAPI, client: httpx.AsyncClient, smtp_server: SmtpServer, session: AsyncSession
) -> None:
    await make_user(session, username="ann")
    await request_reset(client, "ann@example.com")
    [mail] = await delivered(app, smtp_server)
    headers = bearer((await login(client, "ann"))["access_token"])
    changed = await client.patch(
        ME,
        json={"password": "the password ann chose", "current_password": DEFAULT_PASSWORD},
        headers=headers,
    )

    response = await client.post(
        CONFIRM, json={"token": reset_token(mail), "new_password": NEW_PASSWORD}
    )

    assert changed.status_code == 200, changed.text
    assert_problem(response, 400, "token_invalid")
    assert await sign_in_status(client, "ann", "the password ann chose") == 200
    assert await sign_in_status(client, "ann", NEW_PASSWORD) == 401


async def expire_tokens(session: AsyncSession, user_id: int) -> None:
    """As if the links of the user had been mailed long enough ago."""
    passed = datetime.now(UTC) - timedelta(seconds=1)
    await session.execute(
        update(AccountToken).where(AccountToken.user_id == user_id).values(expires_at=passed)
    )
    await session.commit()


@pytest.mark.parametrize(
    ("case", "code"),
    [
        ("expired", "token_expired"),
        ("reused", "token_invalid"),
        ("tampered", "token_invalid"),
        ("wrong-purpose", "token_invalid"),
        ("unknown", "token_invalid"),
        ("malformed", "token_invalid"),
    ],
)
async def test_a_token_that_cannot_be_used_is_a_400_and_changes_nothing(
    app: FastAPI,
    client: httpx.AsyncClient,
    smtp_server: SmtpServer,
    session: AsyncSession,
    monkeypatch: pytest.MonkeyPatch,
    case: str,
    code: str,
) -> None:
    ann = await make_user(session, username="ann")
    headers = bearer((await login(client, "ann"))["access_token"])
    await client.post(VERIFY_REQUEST, headers=headers)
    await request_reset(client, "ann@example.com")
    verification, reset = await delivered(app, smtp_server)
    token = reset_token(reset)
    if case == "reused":
        spent = await client.post(CONFIRM, json={"token": token, "new_password": NEW_PASSWORD})
        assert spent.status_code == 204, spent.text
        headers = bearer((await login(client, "ann", NEW_PASSWORD))["access_token"])
    if case == "expired":
        await expire_tokens(session, ann.id)
    password_hash = await stored_password_hash(session, ann.id)
    unspent = await unspent_tokens(session, ann.id)
    presented = {
        "expired": token,
        "reused": token,
        "tampered": ("B" if token[0] == "A" else "A") + token[1:],
        "wrong-purpose": link_token(verification, VERIFY_EMAIL_PATH),
        "unknown": "A" * 43,
        "malformed": f"{token}==",
    }[case]
    hashes = connections_during_hashing(app, monkeypatch)

    response = await client.post(
        CONFIRM, json={"token": presented, "new_password": "what eve would like"}
    )

    assert_problem(response, 400, code)
    assert token not in response.text
    assert "what eve would like" not in response.text
    # Refused before any hashing: a bad token costs no argon2.
    assert hashes == []
    assert await stored_password_hash(session, ann.id) == password_hash
    assert await unspent_tokens(session, ann.id) == unspent
    # Still signed in: no login ended.
    assert (await client.get(ME, headers=headers)).status_code == 200


@pytest.mark.parametrize(
    "body",
    [
        pytest.param({"new_password": NEW_PASSWORD}, id="no-token"),
        pytest.param({"token": "{token}"}, id="no-password"),
        pytest.param({"token": "{token}", "new_password": "short"}, id="password-too-short"),
        pytest.param({"token": "{token}", "new_password": "p" * 129}, id="password-too-long"),
        pytest.param({"token": "{token}", "new_password": 12345678}, id="password-not-a-string"),
        pytest.param(
            {"token": "{token}", "new_password": NEW_PASSWORD, "email": "eve@example.com"},
            id="unknown-field",
        ),
    ],
)
async def test_an_invalid_body_is_a_422_and_leaves_the_link_working(
    app: FastAPI,
    client: httpx.AsyncClient,
    smtp_server: SmtpServer,
    session: AsyncSession,
    body: dict[str, Any],
) -> None:
    ann = await make_user(session, username="ann")
    await request_reset(client, "ann@example.com")
    [mail] = await delivered(app, smtp_server)
    token = reset_token(mail)
    sent = {key: token if value == "{token}" else value for key, value in body.items()}

    response = await client.post(CONFIRM, json=sent)

    assert_problem(response, 422, "validation_failed")
    assert token not in response.text
    assert await unspent_tokens(session, ann.id) == 1
    assert await sign_in_status(client, "ann", DEFAULT_PASSWORD) == 200
    valid = await client.post(CONFIRM, json={"token": token, "new_password": NEW_PASSWORD})
    assert valid.status_code == 204, valid.text


@pytest.mark.parametrize(
    "body",
    [
        pytest.param({}, id="no-email"),
        pytest.param({"email": "not-an-address"}, id="not-an-address"),
        pytest.param({"email": None}, id="null"),
        pytest.param({"email": "ann@example.com", "username": "ann"}, id="unknown-field"),
    ],
)
async def test_an_invalid_request_is_a_422_and_mails_nothing(
    app: FastAPI, client: httpx.AsyncClient, session: AsyncSession, body: dict[str, Any]
) -> None:
    await make_user(session, username="ann")

    response = await client.post(REQUEST, json=body)

    assert_problem(response, 422, "validation_failed")
    assert await outbox_recipients(app) == []


async def test_the_link_of_an_account_deactivated_since_changes_nothing(
    app: FastAPI, client: httpx.AsyncClient, smtp_server: SmtpServer, session: AsyncSession
) -> None:
    ann = await make_user(session, username="ann")
    await request_reset(client, "ann@example.com")
    [mail] = await delivered(app, smtp_server)
    await session.execute(update(User).where(User.id == ann.id).values(is_active=False))
    await session.commit()
    password_hash = await stored_password_hash(session, ann.id)

    response = await client.post(
        CONFIRM, json={"token": reset_token(mail), "new_password": NEW_PASSWORD}
    )

    assert_problem(response, 400, "token_invalid")
    assert await stored_password_hash(session, ann.id) == password_hash
    assert await unspent_tokens(session, ann.id) == 1


async def test_the_new_password_is_hashed_with_no_transaction_open(
    app: FastAPI,
    client: httpx.AsyncClient,
    smtp_server: SmtpServer,
    session: AsyncSession,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    await make_user(session, username="ann")
    await request_reset(client, "ann@example.com")
    [mail] = await delivered(app, smtp_server)
    connections = connections_during_hashing(app, monkeypatch)

    response = await client.post(
        CONFIRM, json={"token": reset_token(mail), "new_password": NEW_PASSWORD}
    )

    assert response.status_code == 204, response.text
    assert connections == [0]


async def test_of_two_requests_racing_with_one_link_one_sets_the_password(
    app: FastAPI, client: httpx.AsyncClient, smtp_server: SmtpServer, session: AsyncSession
) -> None:
    await make_user(session, username="ann")
    await request_reset(client, "ann@example.com")
    [mail] = await delivered(app, smtp_server)
    token = reset_token(mail)

    first, second = await asyncio.gather(
        client.post(CONFIRM, json={"token": token, "new_password": "the first password"}),
        client.post(CONFIRM, json={"token": token, "new_password": "the second password"}),
    )

    assert sorted([first.status_code, second.status_code]) == [204, 400]
    winner = "the first password" if first.status_code == 204 else "the second password"
    loser = "the second password" if winner == "the first password" else "the first password"
    assert await sign_in_status(client, "ann", winner) == 200
    assert await sign_in_status(client, "ann", loser) == 401


async def test_requests_are_limited_per_address_from_any_client_and_answered_alike_beyond(
    settings: Settings, serve: Serve, smtp_server: SmtpServer, session: AsyncSession
) -> None:
    await make_user(session, username="ann")
    app = create_app(settings.model_copy(update={"RATE_LIMIT_MAIL_ADDRESS": "2/hour"}))
    async with serve(app) as client, client_at(app, "203.0.113.9") as elsewhere:
        responses = [
            await request_reset(client, "ann@example.com"),
            await request_reset(elsewhere, "ANN@example.com"),
            await request_reset(client, "ann@example.com"),
            await request_reset(elsewhere, "ann@example.com"),
        ]
        other_address = await request_reset(client, "nobody@example.com")
        received = await delivered(app, smtp_server)

    assert [response.status_code for response in responses] == [202] * 4
    assert [response.json() for response in responses] == [RESET_ACCEPTED] * 4
    assert other_address.status_code == 202
    assert len(mail_to(received, "ann@example.com")) == 2
    assert len(received) == 2
    # The address's count is not the client's: it is in no RateLimit-* header.
    assert {response.headers["RateLimit-Limit"] for response in responses} == {"20"}


async def test_requests_are_limited_per_client_whatever_the_address_and_answered_alike_beyond(
    settings: Settings, serve: Serve, smtp_server: SmtpServer, session: AsyncSession
) -> None:
    for name in ("ann", "bob", "cyd"):
        await make_user(session, username=name)
    app = create_app(settings.model_copy(update={"RATE_LIMIT_MAIL_CLIENT": "3/hour"}))
    async with serve(app) as client, client_at(app, "203.0.113.9") as elsewhere:
        # An address without an account counts as one with: the answer must not differ.
        responses = [
            await request_reset(client, address)
            for address in (
                "nobody@example.com",
                "ann@example.com",
                "bob@example.com",
                "cyd@example.com",
            )
        ]
        from_elsewhere = await request_reset(elsewhere, "cyd@example.com")
        received = await delivered(app, smtp_server)

    assert [response.status_code for response in responses] == [202] * 4
    assert [response.json() for response in responses] == [RESET_ACCEPTED] * 4
    assert [response.headers["RateLimit-Remaining"] for response in responses] == [
        "2",
        "1",
        "0",
        "0",
    ]
    assert from_elsewhere.status_code == 202
    assert sorted(mail.rcpt_tos[0] for mail in received) == [
        "ann@example.com",
        "bob@example.com",
        "cyd@example.com",
    ]
    assert len(mail_to(received, "cyd@example.com")) == 1


async def test_with_rate_limits_turned_off_every_request_mails(
    settings: Settings, serve: Serve, smtp_server: SmtpServer, session: AsyncSession
) -> None:
    await make_user(session, username="ann")
    app = create_app(
        settings.model_copy(
            update={
                "RATE_LIMIT_ENABLED": False,
                "RATE_LIMIT_MAIL_ADDRESS": "1/hour",
                "RATE_LIMIT_MAIL_CLIENT": "1/hour",
            }
        )
    )
    async with serve(app) as client:
        responses = [await request_reset(client, "ann@example.com") for _ in range(2)]
        received = await delivered(app, smtp_server)

    assert [response.status_code for response in responses] == [202, 202]
    assert "RateLimit-Limit" not in responses[1].headers
    assert len(mail_to(received, "ann@example.com")) == 2


async def test_requests_for_mail_are_refused_with_503_while_redis_is_down_and_mail_nothing(
    settings: Settings,
    serve: Serve,
    smtp_server: SmtpServer,
    session: AsyncSession,
    redis_server: RedisServer,
) -> None:
    await make_user(session, username="ann")
    app = create_app(
        settings.model_copy(update={"REDIS_URL": redis_server.url, "RETRY_AFTER_SECONDS": 7})
    )
    async with serve(app) as client:
        headers = bearer((await login(client, "ann"))["access_token"])
        redis_server.stop()
        down = [
            await request_reset(client, "ann@example.com"),
            await request_reset(client, "nobody@example.com"),
            await client.post(VERIFY_REQUEST, headers=headers),
        ]
        queued_while_down = await outbox_recipients(app)
        redis_server.start()
        assert await app.state.redis.ping()
        after = await request_reset(client, "ann@example.com")
        received = await delivered(app, smtp_server)

    # Alike for an account and for none: the limits are consulted before anything is looked up.
    assert [response.json()["code"] for response in down] == ["rate_limit_unavailable"] * 3
    for response in down:
        assert_problem(response, 503, "rate_limit_unavailable")
        assert response.headers["Retry-After"] == "7"
    assert queued_while_down == []
    assert after.status_code == 202, after.text
    assert [mail.rcpt_tos for mail in received] == [("ann@example.com",)]


async def test_reset_links_and_addresses_never_reach_the_logs(
    app: FastAPI, client: httpx.AsyncClient, smtp_server: SmtpServer, session: AsyncSession
) -> None:
    await make_user(session, username="ann")

    with capture_logs() as logs:
        await request_reset(client, "ann@example.com")
        await request_reset(client, "nobody@example.com")
        [mail] = await delivered(app, smtp_server)
        token = reset_token(mail)
        await client.post(CONFIRM, json={"token": token, "new_password": NEW_PASSWORD})
        await client.post(CONFIRM, json={"token": token, "new_password": NEW_PASSWORD})

    events = {entry["event"] for entry in logs}
    assert {"auth.password_reset_requested", "auth.password_reset"} <= events
    assert token not in repr(logs)
    assert NEW_PASSWORD not in repr(logs)
    assert "ann@example.com" not in repr(logs)
    assert "nobody@example.com" not in repr(logs)
