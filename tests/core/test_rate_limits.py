"""The general rate limit (app/core/rate_limits.py, app/core/rate_limit_middleware.py): who is
counted, what every answer says about it, and where the counts live.

Limits here are small and explicit ("3/minute"); no test waits for a window to pass."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
from fastapi import FastAPI
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.config import Settings
from app.core.rate_limits import UNKNOWN_ADDRESS, client_address
from app.main import create_app
from tests.conftest import Serve
from tests.factories import DEFAULT_PASSWORD, bearer, make_user
from tests.helpers import assert_problem, count_users
from tests.redis_server import RedisServer

POSTS_URL = "/api/v1/posts/"
ME_URL = "/api/v1/users/me"
RATE_LIMIT_HEADERS = ("RateLimit-Limit", "RateLimit-Remaining", "RateLimit-Reset")


def limited_app(settings: Settings, **changes: Any) -> FastAPI:
    return create_app(settings.model_copy(update=changes))


@asynccontextmanager
async def client_at(app: FastAPI, address: str) -> AsyncIterator[httpx.AsyncClient]:
    """A client whose requests come from `address`, as the server would report it."""
    transport = httpx.ASGITransport(app=app, client=(address, 50000))
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        yield client


def quota(response: httpx.Response) -> tuple[int, int, int]:
    """(limit, remaining, seconds until reset) of the RateLimit-* headers."""
    limit, remaining, reset = (int(response.headers[name]) for name in RATE_LIMIT_HEADERS)
    return limit, remaining, reset


async def access_token(app: FastAPI, username: str) -> str:
    """Sign in from an address of its own, so the sign-in spends none of the test's budgets."""
    async with client_at(app, "192.0.2.250") as client:
        response = await client.post(
            "/api/v1/auth/token", data={"username": username, "password": DEFAULT_PASSWORD}
        )
    assert response.status_code == 200, response.text
    token: str = response.json()["access_token"]
    return token


async def test_every_api_answer_carries_the_rate_limit_headers(
    settings: Settings, serve: Serve
) -> None:
    app = limited_app(settings, RATE_LIMIT_DEFAULT="3/minute")
    async with serve(app) as client:
        found = await client.get(POSTS_URL)
        missing = await client.get("/api/v1/posts/999999")
        unauthorized = await client.get(ME_URL)

    assert found.status_code == 200
    assert missing.status_code == 404
    assert unauthorized.status_code == 401
    assert [quota(response)[:2] for response in (found, missing, unauthorized)] == [
        (3, 2),
        (3, 1),
        (3, 0),
    ]
    # Seconds until the first of them leaves the one-minute window.
    resets = [quota(response)[2] for response in (found, missing, unauthorized)]
    assert all(0 < reset <= 60 for reset in resets), resets


async def test_over_the_general_limit_is_a_429_problem_that_does_nothing(
    settings: Settings, serve: Serve, session: AsyncSession
) -> None:
    app = limited_app(settings, RATE_LIMIT_DEFAULT="3/minute")
    async with serve(app) as client:
        for _ in range(3):
            assert (await client.get(POSTS_URL)).status_code == 200
        refused = await client.get(POSTS_URL)
        sign_up = await client.post(
            "/api/v1/users/",
            json={"username": "ann", "email": "ann@example.com", "password": DEFAULT_PASSWORD},
        )

    assert_problem(refused, 429, "rate_limited")
    limit, remaining, reset = quota(refused)
    assert (limit, remaining) == (3, 0)
    assert 1 <= int(refused.headers["Retry-After"]) == reset <= 60
    # Refused before routing: the sign-up never ran.
    assert_problem(sign_up, 429, "rate_limited")
    assert await count_users(session) == 0


async def test_paths_outside_the_api_are_neither_limited_nor_counted(
    settings: Settings, serve: Serve
) -> None:
    app = limited_app(settings, RATE_LIMIT_DEFAULT="1/minute")
    async with serve(app) as client:
        outside = [await client.get(path) for path in ("/health", "/openapi.json", "/docs") * 2]
        api = await client.get(POSTS_URL)

    assert [response.status_code for response in outside] == [200] * 6
    assert not any("RateLimit-Limit" in response.headers for response in outside)
    assert api.status_code == 200
    assert quota(api)[:2] == (1, 0)


async def test_a_valid_access_token_is_counted_for_its_user_wherever_it_comes_from(
    settings: Settings, serve: Serve, session: AsyncSession
) -> None:
    ann = await make_user(session, username="ann")
    await make_user(session, username="bob")
    app = limited_app(settings, RATE_LIMIT_DEFAULT="3/minute")
    async with serve(app) as client, client_at(app, "203.0.113.9") as elsewhere:
        ann_headers = bearer(await access_token(app, "ann"))
        bob_headers = bearer(await access_token(app, "bob"))
        ann_here = [await client.get(ME_URL, headers=ann_headers) for _ in range(2)]
        ann_elsewhere = [await elsewhere.get(ME_URL, headers=ann_headers) for _ in range(2)]
        bob = await client.get(ME_URL, headers=bob_headers)
        anonymous = await client.get(POSTS_URL)

    assert [response.status_code for response in ann_here + ann_elsewhere] == [200, 200, 200, 429]
    assert ann_here[0].json()["id"] == ann.id
    assert_problem(ann_elsewhere[1], 429, "rate_limited")
    # Ann's requests spent neither Bob's budget nor that of the address they came from.
    assert (bob.status_code, quota(bob)[1]) == (200, 2)
    assert (anonymous.status_code, quota(anonymous)[1]) == (200, 2)


async def test_an_invalid_access_token_is_counted_against_its_address(
    settings: Settings, serve: Serve
) -> None:
    app = limited_app(settings, RATE_LIMIT_DEFAULT="3/minute")
    forged = bearer("not.a.token")
    async with serve(app) as client:
        unauthorized = [await client.get(ME_URL, headers=forged) for _ in range(3)]
        anonymous = await client.get(POSTS_URL)

    assert [response.status_code for response in unauthorized] == [401] * 3
    assert_problem(anonymous, 429, "rate_limited")


async def test_each_worker_allows_its_share_of_the_general_limit(
    settings: Settings, serve: Serve
) -> None:
    # Each process counts alone, so each of the WEB_CONCURRENCY workers allows its share,
    # rounded up.
    app = limited_app(settings, RATE_LIMIT_DEFAULT="5/minute", WEB_CONCURRENCY=2)
    async with serve(app) as client:
        answers = [await client.get(POSTS_URL) for _ in range(4)]

    assert [response.status_code for response in answers] == [200, 200, 200, 429]
    assert quota(answers[0])[:2] == (3, 2)


async def test_rate_limit_enabled_false_turns_every_limit_off(
    settings: Settings, serve: Serve, session: AsyncSession
) -> None:
    await make_user(session, username="ann")
    app = limited_app(
        settings,
        RATE_LIMIT_ENABLED=False,
        RATE_LIMIT_DEFAULT="1/minute",
        RATE_LIMIT_LOGIN_ACCOUNT="1/minute",
        RATE_LIMIT_LOGIN_ADDRESS="1/minute",
        RATE_LIMIT_REGISTER_ADDRESS="1/minute",
    )
    async with serve(app) as client:
        reads = [await client.get(POSTS_URL) for _ in range(3)]
        wrong = {"username": "ann", "password": "wrong password"}
        sign_ins = [await client.post("/api/v1/auth/token", data=wrong) for _ in range(3)]
        right = {"username": "ann", "password": DEFAULT_PASSWORD}
        sign_ins.append(await client.post("/api/v1/auth/token", data=right))
        sign_ups = [
            await client.post(
                "/api/v1/users/",
                json={"username": name, "email": f"{name}@example.com", "password": "a password"},
            )
            for name in ("bob", "carl")
        ]

    assert [response.status_code for response in reads] == [200] * 3
    assert [response.status_code for response in sign_ins] == [401, 401, 401, 200]
    assert [response.status_code for response in sign_ups] == [201] * 2
    answers = reads + sign_ins + sign_ups
    assert not any(name in response.headers for response in answers for name in RATE_LIMIT_HEADERS)


def test_clients_the_server_cannot_name_share_one_address() -> None:
    # A Unix socket has no client address: such clients are limited together, never not at all.
    assert client_address({"type": "http", "client": None}) == UNKNOWN_ADDRESS
    assert client_address({"type": "http"}) == UNKNOWN_ADDRESS
    assert client_address({"type": "http", "client": ("192.0.2.1", 443)}) == "192.0.2.1"


async def test_the_general_limit_keeps_counting_in_memory_while_redis_is_down(
    settings: Settings, serve: Serve, redis_server: RedisServer
) -> None:
    app = limited_app(settings, REDIS_URL=redis_server.url, RATE_LIMIT_DEFAULT="2/minute")
    async with serve(app) as client:
        redis_server.stop()
        answers = [await client.get(POSTS_URL) for _ in range(3)]

    assert [response.status_code for response in answers] == [200, 200, 429]
    assert quota(answers[0])[:2] == (2, 1)


async def test_shared_limits_live_in_redis_under_the_key_prefix_and_the_general_one_does_not(
    settings: Settings, serve: Serve, redis_server: RedisServer, redis_key_prefix: str
) -> None:
    app = limited_app(settings, REDIS_URL=redis_server.url)
    async with serve(app) as client:
        await client.get(POSTS_URL)
        await client.post("/api/v1/auth/token", data={"username": "ann", "password": "wrong"})
        await client.post("/api/v1/users/", json={})

    redis = Redis.from_url(redis_server.url, decode_responses=True)
    try:
        keys = sorted(str(key) for key in await redis.keys("*"))
    finally:
        await redis.aclose()
    # The response cache keeps its entries beside them, under the same prefix.
    assert all(key.startswith(redis_key_prefix) for key in keys)
    limit_keys = [key for key in keys if key.startswith(f"{redis_key_prefix}rate-limit:")]
    assert [key.split("/")[1] for key in limit_keys] == [
        "login-account",
        "login-address",
        "register-address",
    ]
