"""The security event log (app/core/security_log.py): each event once, with the user, the client
address and the request id, and only for changes that were committed."""

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from structlog.typing import EventDict

from app.core.config import Settings
from app.main import create_app
from tests.conftest import Serve
from tests.factories import DEFAULT_PASSWORD, auth_headers, bearer, login, make_user
from tests.helpers import assert_problem, capture_logs
from tests.mail.conftest import smtp_settings
from tests.mail.smtp_server import SmtpServer
from tests.mailbox import RESET_PASSWORD_PATH, delivered, link_token

CLIENT_ADDRESS = "203.0.113.7"
NEW_PASSWORD = "a brand new passphrase"


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """Requests from CLIENT_ADDRESS, as the server would report it."""
    transport = httpx.ASGITransport(app=app, client=(CLIENT_ADDRESS, 50000))
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as http_client:
        yield http_client


def security_events(logs: list[EventDict]) -> list[EventDict]:
    return [entry for entry in logs if str(entry["event"]).startswith("security.")]


def assert_event(entry: EventDict, kind: str, user_id: int, response: httpx.Response) -> None:
    assert entry["event"] == f"security.{kind}"
    assert entry["security_event"] == kind
    assert entry["user_id"] == user_id
    assert entry["client_address"] == CLIENT_ADDRESS
    assert entry["request_id"] == response.headers["X-Request-ID"]
    assert entry["log_level"] == "warning"


async def test_a_reused_refresh_token_is_logged(client: httpx.AsyncClient, session: Any) -> None:
    ann = await make_user(session, username="ann")
    tokens = await login(client, "ann")
    body = {"refresh_token": tokens["refresh_token"]}
    assert (await client.post("/api/v1/auth/refresh", json=body)).status_code == 200

    with capture_logs() as logs:
        reused = await client.post("/api/v1/auth/refresh", json=body)

    assert_problem(reused, 401, "invalid_token")
    [event] = security_events(logs)
    assert_event(event, "refresh_token_reused", ann.id, reused)
    assert event["login_id"]


async def test_the_failure_that_locks_an_account_is_logged_once(
    settings: Settings, serve: Serve, session: Any
) -> None:
    app = create_app(settings.model_copy(update={"RATE_LIMIT_LOGIN_ACCOUNT": "3/minute"}))
    async with serve(app) as client:
        ann = await make_user(session, username="ann")
        wrong = {"username": "ann", "password": "not the password"}

        with capture_logs() as logs:
            attempts = [await client.post("/api/v1/auth/token", data=wrong) for _ in range(4)]

    assert [attempt.status_code for attempt in attempts] == [401, 401, 401, 429]
    [event] = security_events(logs)
    assert event["event"] == "security.sign_in_locked"
    assert event["user_id"] == ann.id
    assert event["request_id"] == attempts[2].headers["X-Request-ID"]
    assert event["retry_after_seconds"] > 0


async def test_a_password_change_is_logged_on_either_api(
    client: httpx.AsyncClient, session: Any
) -> None:
    ann = await make_user(session, username="ann")
    headers = await auth_headers(client, ann)

    with capture_logs() as logs:
        native = await client.patch(
            "/api/v1/users/me",
            json={"password": NEW_PASSWORD, "current_password": DEFAULT_PASSWORD},
            headers=headers,
        )
        conduit_token = (
            await client.post(
                "/api/users/login",
                json={"user": {"email": "ann@example.com", "password": NEW_PASSWORD}},
            )
        ).json()["user"]["token"]
        conduit = await client.put(
            "/api/user",
            json={"user": {"password": DEFAULT_PASSWORD}},
            headers={"Authorization": f"Token {conduit_token}"},
        )

    assert (native.status_code, conduit.status_code) == (200, 200)
    first, second = security_events(logs)
    assert_event(first, "password_changed", ann.id, native)
    assert_event(second, "password_changed", ann.id, conduit)


async def test_a_change_that_rolls_back_is_not_logged(
    client: httpx.AsyncClient, session: Any
) -> None:
    ann = await make_user(session, username="ann")
    await make_user(session, username="bob")
    headers = await auth_headers(client, ann)

    with capture_logs() as logs:
        refused = await client.patch(
            "/api/v1/users/me",
            json={
                "username": "bob",
                "password": NEW_PASSWORD,
                "current_password": DEFAULT_PASSWORD,
            },
            headers=headers,
        )

    assert_problem(refused, 409, "username_taken")
    assert security_events(logs) == []


async def test_a_password_reset_is_logged(
    settings: Settings, serve: Serve, smtp_server: SmtpServer, session: Any
) -> None:
    app = create_app(smtp_settings(settings, smtp_server))
    async with serve(app):
        transport = httpx.ASGITransport(app=app, client=(CLIENT_ADDRESS, 50000))
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            ann = await make_user(session, username="ann")
            await client.post("/api/v1/auth/password-reset/request", json={"email": ann.email})
            [mail] = await delivered(app, smtp_server)
            token = link_token(mail, RESET_PASSWORD_PATH)

            with capture_logs() as logs:
                reset = await client.post(
                    "/api/v1/auth/password-reset/confirm",
                    json={"token": token, "new_password": NEW_PASSWORD},
                )

    assert reset.status_code == 204, reset.text
    [event] = security_events(logs)
    assert_event(event, "password_reset", ann.id, reset)


async def test_role_and_status_changes_are_logged_with_the_administrator(
    client: httpx.AsyncClient, session: Any
) -> None:
    root = await make_user(session, username="root", is_superuser=True)
    ann = await make_user(session, username="ann")
    headers = bearer((await login(client, "root"))["access_token"])
    url = f"/api/v1/users/{ann.id}"

    with capture_logs() as logs:
        promoted = await client.patch(url, json={"is_superuser": True}, headers=headers)
        again = await client.patch(url, json={"is_superuser": True}, headers=headers)
        demoted = await client.patch(url, json={"is_superuser": False}, headers=headers)
        deactivated = await client.patch(url, json={"is_active": False}, headers=headers)
        activated = await client.patch(url, json={"is_active": True}, headers=headers)

    assert again.status_code == 200
    events = security_events(logs)
    assert [event["event"] for event in events] == [
        "security.role_changed",
        "security.role_changed",
        "security.account_deactivated",
        "security.account_activated",
    ]
    for event, response in zip(events, (promoted, demoted, deactivated, activated), strict=True):
        assert_event(event, str(event["security_event"]), ann.id, response)
        assert event["by_user_id"] == root.id
    assert [event.get("is_superuser") for event in events[:2]] == [True, False]
