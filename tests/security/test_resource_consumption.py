"""Attacks on the server's resources (OWASP API4:2023 Unrestricted Resource Consumption, ASVS
V13 and V15): every request costs a bounded amount, whatever it asks for or sends, and is
answered with a 4xx, never a 500, with nothing written.

Already covered, and not repeated here: tests/core/test_body_limit.py (a declared 2 GB refused
before the body or the token is read, on a served app too; chunked bodies counted as they come;
exactly the limit read, one byte more refused), tests/core/test_errors.py::test_a_body_with_very_
many_problems_gets_a_bounded_answer_that_counts_them, tests/posts/test_router.py::test_list_
posts_rejects_out_of_range_query_parameters_with_422 and ::test_get_post_rejects_ids_out_of_
range_with_422, tests/auth/test_router.py::test_login_verifies_the_password_with_no_transaction_
open (hashing holds no connection).
"""

import asyncio
import json
import threading
from collections.abc import AsyncIterator
from typing import Any

import anyio
import httpx
import pytest
from fastapi import FastAPI
from pwdlib import PasswordHash
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.config import Settings
from app.main import create_app
from tests.conftest import Serve
from tests.factories import auth_headers, make_post, make_user
from tests.helpers import assert_problem, snapshot

POSTS = "/api/v1/posts/"
SMALL_LIMIT = 2048


# --- Paging --------------------------------------------------------------------------------------

PAGED_ROUTES = ["/api/v1/posts/", "/api/v1/users/", "/api/v1/users/{ann}/posts"]
ABSURD_PAGING = [
    {"limit": str(10**30)},
    {"limit": str(2**63)},
    {"limit": "101"},
    {"limit": "0"},
    {"limit": "-1"},
    {"limit": "1e9"},
    {"limit": "Infinity"},
    {"limit": "NaN"},
    {"offset": str(10**30)},
    {"offset": str(2**31)},
    {"offset": str(2**63)},
    {"offset": "-1"},
    {"offset": "9" * 5000},
]


@pytest.mark.parametrize("params", ABSURD_PAGING, ids=lambda params: str(params)[:40])
@pytest.mark.parametrize("route", PAGED_ROUTES)
async def test_absurd_paging_is_a_422_on_every_list(
    client: httpx.AsyncClient, session: AsyncSession, route: str, params: dict[str, str]
) -> None:
    ann = await make_user(session, username="ann")
    root = await make_user(session, username="root", is_superuser=True)

    response = await client.get(
        route.format(ann=ann.id), params=params, headers=await auth_headers(client, root)
    )

    body = assert_problem(response, 422, "validation_failed")
    assert [error["loc"][0] for error in body["errors"]] == ["query"]
    assert len(response.content) < 2_000


@pytest.mark.parametrize("route", PAGED_ROUTES)
async def test_the_largest_page_and_offset_are_answered(
    client: httpx.AsyncClient, session: AsyncSession, route: str
) -> None:
    ann = await make_user(session, username="ann")
    root = await make_user(session, username="root", is_superuser=True)
    headers = await auth_headers(client, root)

    largest = await client.get(route.format(ann=ann.id), params={"limit": 100}, headers=headers)
    farthest = await client.get(
        route.format(ann=ann.id), params={"offset": 2**31 - 1}, headers=headers
    )

    assert largest.status_code == 200, largest.text
    assert farthest.status_code == 200, farthest.text
    assert farthest.json()["items"] == []


# --- Bodies too large, on every route ----------------------------------------------------------


@pytest.fixture
def small_limit_app(settings: Settings) -> FastAPI:
    return create_app(settings.model_copy(update={"MAX_REQUEST_BODY_BYTES": SMALL_LIMIT}))


async def in_pieces(body: bytes) -> AsyncIterator[bytes]:
    for start in range(0, len(body), 256):
        yield body[start : start + 256]


JSON_TOO_LARGE = json.dumps({"title": "t", "content": "x" * SMALL_LIMIT}).encode()
FORM_TOO_LARGE = b"username=ann&password=" + b"x" * SMALL_LIMIT
BODY_ROUTES = [
    ("POST", "/api/v1/users/", JSON_TOO_LARGE),
    ("PATCH", "/api/v1/users/me", JSON_TOO_LARGE),
    ("PATCH", "/api/v1/users/1", JSON_TOO_LARGE),
    ("POST", "/api/v1/posts/", JSON_TOO_LARGE),
    ("PATCH", "/api/v1/posts/1", JSON_TOO_LARGE),
    ("POST", "/api/v1/auth/token", FORM_TOO_LARGE),
    ("POST", "/api/v1/auth/refresh", JSON_TOO_LARGE),
    ("POST", "/api/v1/auth/password-reset/request", JSON_TOO_LARGE),
]


def content_type(body: bytes) -> str:
    return "application/x-www-form-urlencoded" if body is FORM_TOO_LARGE else "application/json"


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
@pytest.mark.parametrize(("method", "path", "body"), BODY_ROUTES, ids=lambda v: str(v)[:30])
async def test_a_body_over_the_limit_is_a_413_on_every_route_and_changes_nothing(
    small_limit_app: FastAPI, serve: Serve, method: str, path: str, body: bytes, chunked: bool
) -> None:
    async with serve(small_limit_app) as client:
        before = await snapshot(small_limit_app.state.database)
        response = await client.request(
            method,
            path,
            content=in_pieces(body) if chunked else body,
            headers={"Content-Type": content_type(body), "Authorization": "Bearer x"},
        )
        after = await snapshot(small_limit_app.state.database)

    assert ("Content-Length" in response.request.headers) is not chunked
    assert_problem(response, 413, "payload_too_large")
    assert after == before


@pytest.mark.parametrize(
    ("method", "path", "status", "code"),
    [
        ("DELETE", "/api/v1/users/me", 401, "invalid_token"),
        ("GET", "/api/v1/posts/", 401, "invalid_token"),
        ("POST", "/api/v1/no-such-route", 404, "not_found"),
    ],
)
async def test_a_body_of_no_declared_length_is_never_read_where_no_body_is_taken(
    small_limit_app: FastAPI, serve: Serve, method: str, path: str, status: int, code: str
) -> None:
    """Declared too large, it is refused at once; sent chunked, nobody reads it, so it costs
    nothing, and the request is answered as without it."""
    pieces_read = 0

    async def endless() -> AsyncIterator[bytes]:
        nonlocal pieces_read
        for _ in range(10_000):
            pieces_read += 1
            yield b"x" * 256

    async with serve(small_limit_app) as client:
        before = await snapshot(small_limit_app.state.database)
        declared = await client.request(
            method,
            path,
            content=JSON_TOO_LARGE,
            headers={"Content-Type": "application/json", "Authorization": "Bearer x"},
        )
        chunked = await client.request(
            method, path, content=endless(), headers={"Authorization": "Bearer x"}
        )
        after = await snapshot(small_limit_app.state.database)

    assert_problem(declared, 413, "payload_too_large")
    assert_problem(chunked, status, code)
    # The transport hands the app a piece each time the app asks: it asked for none.
    assert pieces_read <= 1
    assert after == before


# --- Huge values and deep nesting, under the body limit ----------------------------------------


def nested_list(depth: int, inner: str = "") -> str:
    return "[" * depth + inner + "]" * depth


def nested_object(depth: int) -> str:
    return '{"a":' * depth + "1" + "}" * depth


HUGE = {
    "title-900-kB": json.dumps({"title": "t" * 900_000, "content": "c"}),
    "content-900-kB": json.dumps({"title": "t", "content": "c" * 900_000}),
    "title-an-array-of-100k": json.dumps({"title": [0] * 100_000, "content": "c"}),
    "body-an-array-of-100k": json.dumps([{"title": "t", "content": "c"}] * 20_000),
    "title-an-object-of-20k-keys": json.dumps(
        {"title": {str(n): n for n in range(20_000)}, "content": "c"}
    ),
    "number-of-100k-digits": '{"title": ' + "9" * 100_000 + ', "content": "c"}',
    "body-100k-levels-of-lists": nested_list(100_000),
    "body-100k-levels-of-objects": nested_object(100_000),
    "title-100k-levels-of-lists": '{"title": ' + nested_list(100_000) + ', "content": "c"}',
    "content-990-levels-of-lists": '{"title": "t", "content": ' + nested_list(990) + "}",
    "escapes-of-surrogates": '{"title": "' + "\\ud800" * 100_000 + '", "content": "c"}',
}


@pytest.mark.parametrize("body", HUGE.values(), ids=HUGE.keys())
async def test_huge_or_deeply_nested_json_is_a_4xx_and_creates_nothing(
    app: FastAPI, client: httpx.AsyncClient, session: AsyncSession, body: str
) -> None:
    user = await make_user(session, username="ann")
    headers = {**await auth_headers(client, user), "Content-Type": "application/json"}
    before = await snapshot(app.state.database)

    response = await client.post(POSTS, content=body.encode(), headers=headers)

    assert 400 <= response.status_code < 500, response.text[:500]
    assert_problem(response, response.status_code, response.json()["code"])
    assert len(response.content) < 5_000
    assert await snapshot(app.state.database) == before


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("PATCH", "/api/v1/users/me"),
        ("POST", "/api/v1/users/"),
        ("POST", "/api/v1/auth/refresh"),
        ("PATCH", "/api/v1/posts/{post}"),
    ],
)
async def test_deeply_nested_json_is_a_4xx_on_every_json_route(
    app: FastAPI, client: httpx.AsyncClient, session: AsyncSession, method: str, path: str
) -> None:
    user = await make_user(session, username="ann")
    post = await make_post(session, user)
    headers = {**await auth_headers(client, user), "Content-Type": "application/json"}
    before = await snapshot(app.state.database)

    response = await client.request(
        method, path.format(post=post.id), content=nested_list(100_000), headers=headers
    )

    assert_problem(response, 422, "validation_failed")
    assert await snapshot(app.state.database) == before


# --- Many sign-ins at once -----------------------------------------------------------------------

CONCURRENCY = 2


class HeldHashing:
    """argon2 runs that wait, in their worker thread, until released: how many run at once,
    and whether the event loop goes on meanwhile."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.running = 0
        self.most_at_once = 0
        self.threads: set[int] = set()
        self.release = threading.Event()
        self._lock = threading.Lock()
        verify_and_update, hash_ = PasswordHash.verify_and_update, PasswordHash.hash

        def held(run: Any) -> Any:
            def wrapper(*args: Any, **kwargs: Any) -> Any:
                with self._lock:
                    self.running += 1
                    self.most_at_once = max(self.most_at_once, self.running)
                    self.threads.add(threading.get_ident())
                try:
                    self.release.wait(timeout=30)
                    return run(*args, **kwargs)
                finally:
                    with self._lock:
                        self.running -= 1

            return wrapper

        monkeypatch.setattr(PasswordHash, "verify_and_update", held(verify_and_update))
        monkeypatch.setattr(PasswordHash, "hash", held(hash_))

    async def until_running(self, count: int) -> None:
        with anyio.fail_after(20):
            while self.running < count:  # noqa: ASYNC110 - a thread's count, no event to wait on
                await anyio.sleep(0.01)


async def test_many_sign_ins_at_once_hash_a_bounded_few_at_a_time_off_the_event_loop(
    settings: Settings, serve: Serve, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = create_app(
        settings.model_copy(
            update={"PASSWORD_HASH_MAX_CONCURRENCY": CONCURRENCY, "RATE_LIMIT_ENABLED": False}
        )
    )
    async with serve(app) as client:
        hashing = HeldHashing(monkeypatch)
        sign_ins = [
            asyncio.create_task(
                client.post(
                    "/api/v1/auth/token", data={"username": f"nobody{n}", "password": "guess"}
                )
            )
            for n in range(12)
        ]
        sign_ups = [
            asyncio.create_task(
                client.post(
                    "/api/v1/users/",
                    json={
                        "username": f"new{n}",
                        "email": f"new{n}@example.com",
                        "password": "a long passphrase",
                    },
                )
            )
            for n in range(4)
        ]
        await hashing.until_running(CONCURRENCY)
        # Every worker the limit allows is busy hashing, and the rest wait their turn: still
        # the event loop serves other requests, as fast as it would otherwise.
        await anyio.sleep(0.2)
        with anyio.fail_after(10):
            health = await client.get("/health")
            posts = await client.get(POSTS)
        assert hashing.running == CONCURRENCY
        hashing.release.set()
        with anyio.fail_after(60):
            answers = await asyncio.gather(*sign_ins, *sign_ups)

    assert health.status_code == 200
    assert posts.status_code == 200
    assert [answer.status_code for answer in answers] == [401] * 12 + [201] * 4
    assert hashing.most_at_once == CONCURRENCY
    assert threading.main_thread().ident not in hashing.threads
