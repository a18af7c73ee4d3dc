"""The sign-in and sign-up limits: failures per account, attempts per address, sign-ups per
address; shared by every process through Redis, refused (503) when Redis is down, and keyed by
the address the server reports, whatever X-Forwarded-For says.

Limits here are small and explicit ("3/minute"); where a test needs a window to have passed, it
clears the window the way the storage does when it passes."""

import asyncio
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
import uvicorn
from fastapi import FastAPI
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.config import Settings
from app.core.rate_limits import RateLimits
from app.main import create_app
from tests.conftest import Serve
from tests.factories import DEFAULT_PASSWORD, make_user
from tests.helpers import assert_problem, connections_during_hashing, count_users, on_hashing
from tests.redis_server import RedisServer

TOKEN_URL = "/api/v1/auth/token"
USERS_URL = "/api/v1/users/"
RATE_LIMIT_HEADERS = ("RateLimit-Limit", "RateLimit-Remaining", "RateLimit-Reset")
WRONG_PASSWORD = "not the password"


def limited_app(settings: Settings, **changes: Any) -> FastAPI:
    return create_app(settings.model_copy(update=changes))


@asynccontextmanager
async def client_at(app: FastAPI, address: str) -> AsyncIterator[httpx.AsyncClient]:
    """A client whose requests come from `address`, as the server would report it."""
    transport = httpx.ASGITransport(app=app, client=(address, 50000))
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        yield client


async def sign_in(
    client: httpx.AsyncClient, username: str, password: str = DEFAULT_PASSWORD
) -> httpx.Response:
    return await client.post(TOKEN_URL, data={"username": username, "password": password})


async def sign_up(client: httpx.AsyncClient, username: str) -> httpx.Response:
    return await client.post(
        USERS_URL,
        json={"username": username, "email": f"{username}@example.com", "password": "a password"},
    )


def statuses(responses: list[httpx.Response]) -> list[int]:
    return [response.status_code for response in responses]


def quota(response: httpx.Response) -> tuple[int, int]:
    """(limit, remaining) of the RateLimit-* headers."""
    return int(response.headers["RateLimit-Limit"]), int(response.headers["RateLimit-Remaining"])


def assert_refused_until_its_window_passes(response: httpx.Response, window_seconds: int) -> None:
    assert_problem(response, 429, "rate_limited")
    assert response.headers["RateLimit-Remaining"] == "0"
    retry_after = int(response.headers["Retry-After"])
    assert 1 <= retry_after <= window_seconds
    assert response.headers["RateLimit-Reset"] == str(retry_after)


async def test_failed_sign_ins_spend_the_account_and_then_even_the_right_password_is_refused(
    settings: Settings,
    serve: Serve,
    session: AsyncSession,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    ann = await make_user(session, username="ann")
    app = limited_app(settings, RATE_LIMIT_LOGIN_ACCOUNT="3/minute")
    async with serve(app) as client:
        verifications = connections_during_hashing(app, monkeypatch)
        failures = [await sign_in(client, "ann", WRONG_PASSWORD) for _ in range(3)]
        right_password = await sign_in(client, "ann")
        verified = len(verifications)
        rate_limits: RateLimits = app.state.rate_limits
        await rate_limits.login_account.clear(f"user:{ann.id}")  # as when the window passes
        after_the_window = await sign_in(client, "ann")

    assert statuses(failures) == [401] * 3
    # The tightest limit met: the account's failures, not the address's 30 attempts.
    assert [quota(response) for response in failures] == [(3, 2), (3, 1), (3, 0)]
    assert_refused_until_its_window_passes(right_password, 60)
    # Refused before the password was verified: nothing is hashed for a refused attempt.
    assert verified == 3
    assert after_the_window.status_code == 200, after_the_window.text


async def test_successful_sign_ins_do_not_spend_the_account(
    settings: Settings, serve: Serve, session: AsyncSession
) -> None:
    await make_user(session, username="ann")
    app = limited_app(settings, RATE_LIMIT_LOGIN_ACCOUNT="2/minute")
    async with serve(app) as client:
        successes = [await sign_in(client, "ann") for _ in range(4)]
        failures = [await sign_in(client, "ann", WRONG_PASSWORD) for _ in range(3)]

    assert statuses(successes) == [200] * 4
    assert [quota(response) for response in successes] == [(2, 2)] * 4
    assert statuses(failures) == [401, 401, 429]


async def test_a_sign_in_forgives_the_failures_before_it(
    settings: Settings, serve: Serve, session: AsyncSession
) -> None:
    await make_user(session, username="ann")
    app = limited_app(settings, RATE_LIMIT_LOGIN_ACCOUNT="3/minute")
    async with serve(app) as client:
        before = [await sign_in(client, "ann", WRONG_PASSWORD) for _ in range(2)]
        signed_in = await sign_in(client, "ann")
        after = [await sign_in(client, "ann", WRONG_PASSWORD) for _ in range(4)]

    assert statuses(before) == [401, 401]
    assert (signed_in.status_code, quota(signed_in)) == (200, (3, 3))
    assert statuses(after) == [401, 401, 401, 429]


async def test_the_right_password_of_a_deactivated_account_still_spends_it(
    settings: Settings, serve: Serve, session: AsyncSession
) -> None:
    # Were it forgiven, the headers of its 401 would tell the right password from a wrong one.
    await make_user(session, username="ivy", is_active=False)
    app = limited_app(settings, RATE_LIMIT_LOGIN_ACCOUNT="3/minute")
    async with serve(app) as client:
        attempts = [await sign_in(client, "ivy") for _ in range(4)]

    assert statuses(attempts) == [401, 401, 401, 429]
    assert [quota(response) for response in attempts[:3]] == [(3, 2), (3, 1), (3, 0)]


async def test_of_attempts_racing_only_as_many_as_the_account_has_left_are_verified(
    settings: Settings,
    serve: Serve,
    session: AsyncSession,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Checked first and counted after the verification, racing attempts would all be verified.
    await make_user(session, username="ann")
    app = limited_app(settings, RATE_LIMIT_LOGIN_ACCOUNT="2/minute")
    verifying: list[None] = []
    attempts: list[asyncio.Task[httpx.Response]] = []
    all_raced, release = asyncio.Event(), asyncio.Event()

    def note_progress() -> None:
        # Every attempt is either answered or held at its verification: all have raced.
        if len(verifying) + sum(attempt.done() for attempt in attempts) == 5:
            all_raced.set()

    async def hold_until_released() -> None:
        verifying.append(None)
        note_progress()
        await release.wait()

    async with serve(app) as client:
        on_hashing(app, monkeypatch, hold_until_released)
        for _ in range(5):
            attempts.append(asyncio.create_task(sign_in(client, "ann", WRONG_PASSWORD)))
            attempts[-1].add_done_callback(lambda _: note_progress())
        await all_raced.wait()
        release.set()
        answers = await asyncio.gather(*attempts)

    assert len(verifying) == 2
    assert sorted(statuses(answers)) == [401, 401, 429, 429, 429]


async def test_the_account_is_one_whatever_name_or_case_it_is_signed_in_with(
    settings: Settings, serve: Serve, session: AsyncSession
) -> None:
    await make_user(session, username="Ann", email="ann@example.com")
    app = limited_app(settings, RATE_LIMIT_LOGIN_ACCOUNT="3/minute")
    async with serve(app) as client:
        failures = [
            await sign_in(client, name, WRONG_PASSWORD)
            for name in ("Ann", "ANN@example.com", " ann")
        ]
        right_password = await sign_in(client, "ann@example.com")

    assert statuses(failures) == [401] * 3
    assert_refused_until_its_window_passes(right_password, 60)


async def test_an_unknown_name_is_limited_as_the_lookup_normalizes_it(
    settings: Settings, serve: Serve
) -> None:
    app = limited_app(settings, RATE_LIMIT_LOGIN_ACCOUNT="3/minute")
    async with serve(app) as client:
        failures = [
            await sign_in(client, name, WRONG_PASSWORD) for name in ("Ghost", "ghost ", "GHOST")
        ]
        again = await sign_in(client, "ghost", WRONG_PASSWORD)
        another_name = await sign_in(client, "phantom", WRONG_PASSWORD)

    assert statuses(failures) == [401] * 3
    assert_refused_until_its_window_passes(again, 60)
    assert another_name.status_code == 401


async def test_every_sign_in_attempt_spends_its_address(
    settings: Settings, serve: Serve, session: AsyncSession
) -> None:
    for name in ("ann", "bob", "cyd"):
        await make_user(session, username=name)
    app = limited_app(settings, RATE_LIMIT_LOGIN_ADDRESS="3/minute")
    async with serve(app) as client, client_at(app, "203.0.113.9") as elsewhere:
        attempts = [
            await sign_in(client, "ann"),
            await sign_in(client, "bob", WRONG_PASSWORD),
            await sign_in(client, "nobody", WRONG_PASSWORD),
        ]
        right_password = await sign_in(client, "cyd")
        invalid_form = await client.post(TOKEN_URL, data={"username": "cyd"})
        from_elsewhere = await sign_in(elsewhere, "cyd")

    assert statuses(attempts) == [200, 401, 401]
    assert [quota(response) for response in attempts] == [(3, 2), (3, 1), (3, 0)]
    assert_refused_until_its_window_passes(right_password, 60)
    assert_refused_until_its_window_passes(invalid_form, 60)
    assert from_elsewhere.status_code == 200


async def test_sign_ups_are_limited_per_address(
    settings: Settings, serve: Serve, session: AsyncSession
) -> None:
    app = limited_app(settings, RATE_LIMIT_REGISTER_ADDRESS="2/hour")
    async with serve(app) as client, client_at(app, "203.0.113.9") as elsewhere:
        accepted = [await sign_up(client, name) for name in ("ann", "bob")]
        refused = await sign_up(client, "cyd")
        from_elsewhere = await sign_up(elsewhere, "dee")

    assert statuses(accepted) == [201, 201]
    assert [quota(response) for response in accepted] == [(2, 1), (2, 0)]
    assert_refused_until_its_window_passes(refused, 3600)
    assert from_elsewhere.status_code == 201
    assert await count_users(session) == 3


async def test_sign_in_and_sign_up_refuse_with_503_while_redis_is_down_and_recover_after(
    settings: Settings,
    serve: Serve,
    session: AsyncSession,
    redis_server: RedisServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    await make_user(session, username="ann")
    app = limited_app(settings, REDIS_URL=redis_server.url, RETRY_AFTER_SECONDS=7)
    async with serve(app) as client:
        verifications = connections_during_hashing(app, monkeypatch)
        before = await sign_in(client, "ann")
        redis_server.stop()
        verified_before = len(verifications)
        down = [await sign_in(client, "ann"), await sign_in(client, "ann", WRONG_PASSWORD)]
        sign_up_down = await sign_up(client, "bob")
        verified_while_down = len(verifications) - verified_before
        read_while_down = await client.get("/api/v1/posts/")
        redis_server.start()
        assert await app.state.redis.ping()
        after = await sign_in(client, "ann")

    assert before.status_code == 200, before.text
    for response in [*down, sign_up_down]:
        assert_problem(response, 503, "rate_limit_unavailable")
        assert response.headers["Retry-After"] == "7"
    assert verified_while_down == 0
    assert await count_users(session) == 1
    # The general limit never needed Redis.
    assert read_while_down.status_code == 200
    assert after.status_code == 200, after.text


async def test_two_processes_on_one_redis_share_the_sign_in_and_sign_up_limits(
    settings: Settings, serve: Serve, session: AsyncSession, redis_server: RedisServer
) -> None:
    await make_user(session, username="ann")
    shared = settings.model_copy(
        update={
            "REDIS_URL": redis_server.url,
            "RATE_LIMIT_LOGIN_ACCOUNT": "2/minute",
            "RATE_LIMIT_LOGIN_ADDRESS": "3/minute",
            "RATE_LIMIT_REGISTER_ADDRESS": "1/hour",
        }
    )
    # Two apps are two workers: nothing in common but the database and Redis.
    async with serve(create_app(shared)) as first, serve(create_app(shared)) as second:
        failures = [
            await sign_in(first, "ann", WRONG_PASSWORD),
            await sign_in(second, "ann", WRONG_PASSWORD),
        ]
        account_spent = await sign_in(first, "ann")
        address_spent = await sign_in(second, "nobody", WRONG_PASSWORD)
        sign_ups = [await sign_up(first, "bob"), await sign_up(second, "cyd")]

    assert statuses(failures) == [401, 401]
    assert_refused_until_its_window_passes(account_spent, 60)
    # The refused attempt counted too: three in all, so the address has none left on either.
    assert_refused_until_its_window_passes(address_spent, 60)
    assert statuses(sign_ups) == [201, 429]


async def test_redis_keys_never_hold_the_name_a_sign_in_was_attempted_with(
    settings: Settings, serve: Serve, redis_server: RedisServer
) -> None:
    # People type their password into the username field: it must not sit in Redis.
    app = limited_app(settings, REDIS_URL=redis_server.url)
    async with serve(app) as client:
        response = await sign_in(client, "Hunter2-Typed-As-A-Name", WRONG_PASSWORD)

    redis = Redis.from_url(redis_server.url, decode_responses=True)
    try:
        keys = [str(key) for key in await redis.keys("*login-account*")]
    finally:
        await redis.aclose()
    assert response.status_code == 401
    assert len(keys) == 1
    assert "hunter2" not in keys[0].lower()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@asynccontextmanager
async def uvicorn_serving(app: FastAPI) -> AsyncIterator[str]:
    """`app` served by uvicorn on a loopback port, configured as `fastapi run` configures it
    (proxy headers on, trusted from FORWARDED_ALLOW_IPS, by default 127.0.0.1 and ::1)."""
    port = free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, ws="none", log_level="warning")
    server = uvicorn.Server(config)
    serving = asyncio.create_task(server.serve())
    try:
        while not server.started:
            if serving.done():
                serving.result()
                pytest.fail("uvicorn stopped before it started")
            await asyncio.sleep(0.01)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await serving


async def test_x_forwarded_for_from_an_untrusted_peer_cannot_escape_the_address_limit(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("FORWARDED_ALLOW_IPS", raising=False)
    app = limited_app(settings, RATE_LIMIT_LOGIN_ADDRESS="3/minute")
    untrusted_peer = httpx.AsyncHTTPTransport(local_address="127.0.0.2")
    async with uvicorn_serving(app) as base_url:
        async with httpx.AsyncClient(base_url=base_url, transport=untrusted_peer) as client:
            spoofed = [
                await client.post(
                    TOKEN_URL,
                    data={"username": f"nobody{n}", "password": WRONG_PASSWORD},
                    headers={"X-Forwarded-For": f"198.51.100.{n}"},
                )
                for n in range(4)
            ]
        # From a trusted proxy (127.0.0.1), X-Forwarded-For does name the client: each of
        # these comes from an address of its own.
        async with httpx.AsyncClient(base_url=base_url) as proxy:
            forwarded = [
                await proxy.post(
                    TOKEN_URL,
                    data={"username": f"nobody{n}", "password": WRONG_PASSWORD},
                    headers={"X-Forwarded-For": f"203.0.113.{n}"},
                )
                for n in range(4)
            ]

    assert statuses(spoofed) == [401, 401, 401, 429]
    assert_refused_until_its_window_passes(spoofed[3], 60)
    assert statuses(forwarded) == [401] * 4
    assert [quota(response) for response in forwarded] == [(3, 2)] * 4
