"""Attacks on how Quill is set up (OWASP API8:2023 Security Misconfiguration, ASVS V13 and V3):
no origin it was not told of may read it, every answer carries the security headers, no answer
shows its internals, and every path says which methods and bodies it takes.

Already covered, and not repeated here: tests/core/test_cors.py::test_an_unlisted_origin_is_never_
reflected (one unlisted origin; lookalikes below), tests/core/test_security_headers.py::test_every_
answer_carries_the_security_headers_and_a_policy_that_allows_nothing (200, 401, 404, 405, 422,
500; every other kind of answer below), tests/core/test_errors.py::test_unhandled_exception_is_a_
500_problem_with_the_request_id_and_no_internals, ::test_an_integrity_error_no_constraint_maps_
is_a_500_logged_without_the_row and ::test_allow_header_names_every_method_the_path_serves (four
paths; every path below).
"""

from collections import defaultdict
from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI
from fastapi.routing import iter_route_contexts
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.config import DEVELOPMENT_FRONTEND_ORIGINS, Environment, Settings
from app.core.error_handlers import HTTP_METHODS
from app.core.paths import API_V1_PREFIX
from app.main import create_app
from tests.conftest import Serve
from tests.core.test_security_headers import assert_security_headers
from tests.factories import auth_headers, make_post, make_user
from tests.helpers import assert_problem, snapshot

LISTED = "https://app.example.com"
ALLOW_ORIGIN = "Access-Control-Allow-Origin"
POSTS = "/api/v1/posts/"


# --- CORS ----------------------------------------------------------------------------------------

LOOKALIKES = [
    "https://app.example.com.evil.example",
    "https://evil.example/https://app.example.com",
    "https://evil-app.example.com",
    "https://xapp.example.com",
    "https://app.example.co",
    "https://sub.app.example.com",
    "http://app.example.com",
    "https://app.example.com:8443",
    "https://app.example.com%60.evil.example",
    "https://app.example.com@evil.example",
    "null",
    "*",
    "",
]


@pytest.fixture
async def cors_client(settings: Settings, serve: Serve) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(settings.model_copy(update={"CORS_ORIGINS": [LISTED]}))
    async with serve(app) as client:
        yield client


def preflight(origin: str, method: str = "POST") -> dict[str, str]:
    return {
        "Origin": origin,
        "Access-Control-Request-Method": method,
        "Access-Control-Request-Headers": "authorization,content-type",
    }


def assert_not_allowed(response: httpx.Response, origin: str) -> None:
    assert ALLOW_ORIGIN not in response.headers, (origin, response.headers)
    assert "Access-Control-Allow-Credentials" not in response.headers
    assert "Access-Control-Allow-Methods" not in response.headers
    if origin:
        assert origin not in response.text


@pytest.mark.http_layer
@pytest.mark.parametrize("origin", LOOKALIKES)
async def test_an_origin_that_only_looks_like_a_listed_one_is_never_allowed(
    cors_client: httpx.AsyncClient, origin: str
) -> None:
    read = await cors_client.get(POSTS, headers={"Origin": origin})
    failed = await cors_client.get("/api/v1/users/me", headers={"Origin": origin})
    missing = await cors_client.get("/api/v1/posts/999", headers={"Origin": origin})
    checked = await cors_client.options(POSTS, headers=preflight(origin))

    assert (read.status_code, failed.status_code, missing.status_code) == (200, 401, 404)
    for response in (read, failed, missing, checked):
        assert_not_allowed(response, origin)
    assert checked.status_code == 400


@pytest.mark.http_layer
@pytest.mark.parametrize("origin", ["http://localhost:3000.evil.example", "http://localhost"])
async def test_development_allows_only_the_exact_local_frontend_origins(
    settings: Settings, serve: Serve, origin: str
) -> None:
    app = create_app(settings.model_copy(update={"ENVIRONMENT": Environment.DEVELOPMENT}))
    async with serve(app) as client:
        allowed = await client.get(POSTS, headers={"Origin": DEVELOPMENT_FRONTEND_ORIGINS[0]})
        lookalike = await client.get(POSTS, headers={"Origin": origin})
        checked = await client.options(POSTS, headers=preflight(origin))

    assert allowed.headers[ALLOW_ORIGIN] == DEVELOPMENT_FRONTEND_ORIGINS[0]
    assert_not_allowed(lookalike, origin)
    assert_not_allowed(checked, origin)


@pytest.mark.http_layer
async def test_production_allows_no_origin_until_told(settings: Settings, serve: Serve) -> None:
    app = create_app(
        settings.model_copy(
            update={"ENVIRONMENT": Environment.PRODUCTION, "ALLOWED_HOSTS": ["test"]}
        )
    )
    async with serve(app) as client:
        for origin in (*DEVELOPMENT_FRONTEND_ORIGINS, LISTED):
            assert_not_allowed(await client.get(POSTS, headers={"Origin": origin}), origin)


# --- Security headers and internals, on every kind of answer ---------------------------------

# Words only a traceback, a driver's message or SQL would show.
INTERNALS = [
    "Traceback",
    'File "',
    ".py",
    "sqlalchemy",
    "sqlite3",
    "aiosqlite",
    "asyncpg",
    "psycopg",
    "SELECT ",
    "INSERT ",
    "UPDATE ",
    " FROM ",
    "RecursionError",
    "Exception",
    "hashed_password",
    "$argon2",
]


def assert_no_internals(response: httpx.Response) -> None:
    for word in INTERNALS:
        assert word not in response.text, (word, response.text[:500])


@pytest.fixture
def crashing_app(settings: Settings) -> FastAPI:
    app = create_app(settings.model_copy(update={"MAX_REQUEST_BODY_BYTES": 1024}))

    @app.get("/test/crash")
    async def crash() -> None:
        raise RuntimeError('SELECT hashed_password FROM users -- File "secret.py"')

    return app


KINDS_OF_ANSWER = [
    ("GET", "/api/v1/posts/", {}, b"", 200),
    ("HEAD", "/health", {}, b"", 405),
    ("GET", "/api/v1/posts", {}, b"", 307),
    ("GET", "/api/v1/posts/999", {"Authorization": "Bearer x.y.z"}, b"", 401),
    ("GET", "/api/v1/users/", {}, b"", 401),
    ("GET", "/metrics", {"X-Forwarded-For": "203.0.113.9"}, b"", 200),
    ("POST", "/api/v1/posts/", {"Content-Length": "99999999"}, b"{}", 413),
    ("POST", "/api/v1/users/", {"Content-Type": "application/json"}, b"{", 422),
    ("POST", "/api/v1/users/", {"Content-Type": "text/plain"}, b"{}", 422),
    ("POST", "/api/v1/users/", {"Content-Type": "application/json"}, b"[" * 50_000, 413),
    ("GET", "/api/v1/posts/0", {}, b"", 422),
    ("GET", "/api/v1/posts/?limit=1e999", {}, b"", 422),
    ("GET", "/api/v1/posts/", {"Host": "evil.example"}, b"", 200),
    ("OPTIONS", "/api/v1/posts/", {"Origin": LISTED}, b"", 204),
    ("GET", "/test/crash", {}, b"", 500),
]


@pytest.mark.http_layer
@pytest.mark.parametrize(
    ("method", "path", "headers", "body", "status"),
    KINDS_OF_ANSWER,
    ids=[f"{status}-{method}-{path}" for method, path, _, _, status in KINDS_OF_ANSWER],
)
async def test_every_kind_of_answer_has_the_security_headers_and_shows_no_internals(
    crashing_app: FastAPI,
    serve: Serve,
    method: str,
    path: str,
    headers: dict[str, str],
    body: bytes,
    status: int,
) -> None:
    async with serve(crashing_app) as client:
        response = await client.request(
            method, path, headers=headers, content=body or None, follow_redirects=False
        )

    assert response.status_code == status, response.text[:500]
    assert_security_headers(response)
    assert_no_internals(response)
    assert response.headers.get("X-Request-ID")


@pytest.mark.http_layer
async def test_a_rate_limited_and_a_refused_host_answer_have_the_security_headers(
    settings: Settings, serve: Serve, session: AsyncSession
) -> None:
    app = create_app(
        settings.model_copy(
            update={"RATE_LIMIT_LOGIN_ADDRESS": "1/minute", "ALLOWED_HOSTS": ["quill.example"]}
        )
    )
    async with serve(app) as client:
        form = {"username": "nobody", "password": "guess"}
        host = {"Host": "quill.example"}
        first = await client.post("/api/v1/auth/token", data=form, headers=host)
        limited = await client.post("/api/v1/auth/token", data=form, headers=host)
        refused_host = await client.get(POSTS, headers={"Host": "evil.example"})

    assert first.status_code == 401
    assert_problem(limited, 429, "rate_limited")
    assert_problem(refused_host, 400, "host_not_allowed")
    for response in (first, limited, refused_host):
        assert_security_headers(response)
        assert_no_internals(response)
    assert "evil.example" not in refused_host.text


async def test_an_unreachable_database_is_a_503_with_the_security_headers_and_no_internals(
    app: FastAPI, client: httpx.AsyncClient, session: AsyncSession, database_down: None
) -> None:
    responses = [
        await client.get(POSTS),
        await client.post("/api/v1/auth/token", data={"username": "ann", "password": "guess"}),
        await client.get("/ready"),
    ]

    assert [response.status_code for response in responses] == [503, 503, 503]
    for response in responses:
        assert_security_headers(response)
        assert_no_internals(response)
    assert all(response.headers["Retry-After"] for response in responses[:2])


# --- Methods and bodies each path takes ------------------------------------------------------


def served_methods(app: FastAPI) -> dict[str, set[str]]:
    """Every path the app routes (mounts excepted), with the methods some route serves there."""
    served: dict[str, set[str]] = defaultdict(set)
    for context in iter_route_contexts(app.routes):
        if context.methods and context.path:
            served[context.path] |= context.methods
    return dict(served)


def concrete(path: str) -> str:
    return path.replace("{user_id}", "1").replace("{post_id}", "1")


@pytest.mark.http_layer
async def test_every_path_answers_every_other_method_with_405_and_an_allow_of_all_it_serves(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    """Every method a path does not serve is a 405 naming, in Allow, every method it does, OPTIONS
    included; OPTIONS itself is a 204 with the same Allow."""
    served = served_methods(app)
    assert "/api/v1/posts/{post_id}" in served
    before = await snapshot(app.state.database)
    checked = 0

    for path, methods in sorted(served.items()):
        allowed = methods | {"OPTIONS"}
        options = await client.options(concrete(path))
        assert options.status_code == 204, (path, options.text)
        assert set(options.headers["Allow"].split(", ")) == allowed, path
        for method in HTTP_METHODS:
            if method in allowed:
                continue
            response = await client.request(method, concrete(path), json={})
            assert response.status_code == 405, (method, path, response.text)
            assert set(response.headers["Allow"].split(", ")) == allowed, (method, path)
            if method == "HEAD":
                pass
            elif path.startswith(API_V1_PREFIX) or not path.startswith("/api/"):
                assert_problem(response, 405, "method_not_allowed")
            else:  # the Conduit surface writes its errors its own way
                assert response.json() == {"errors": {"method": ["is not allowed"]}}
            checked += 1

    assert checked > 40
    assert await snapshot(app.state.database) == before


NOT_JSON = {
    "text/plain": ("text/plain", b'{"title": "t", "content": "c"}'),
    "text/plain-utf8": ("text/plain;charset=UTF-8", b'{"title": "t", "content": "c"}'),
    "no-content-type": ("", b'{"title": "t", "content": "c"}'),
    "form-urlencoded": ("application/x-www-form-urlencoded", b"title=t&content=c"),
    "multipart": (
        "multipart/form-data; boundary=x",
        b'--x\r\nContent-Disposition: form-data; name="title"\r\n\r\nt\r\n--x--\r\n',
    ),
    "xml": ("application/xml", b"<post><title>t</title><content>c</content></post>"),
    "text/json-lookalike": ("text/json", b'{"title": "t", "content": "c"}'),
    "yaml": ("application/yaml", b"title: t\ncontent: c\n"),
    "json-not-utf8": ("application/json", b'{"title": "\xff\xfe", "content": "c"}'),
}


@pytest.mark.http_layer
@pytest.mark.parametrize(("content_type", "body"), NOT_JSON.values(), ids=NOT_JSON.keys())
@pytest.mark.parametrize("method", ["POST", "PATCH"])
async def test_a_body_that_is_not_json_is_a_415_or_422_and_writes_nothing(
    app: FastAPI,
    client: httpx.AsyncClient,
    session: AsyncSession,
    method: str,
    content_type: str,
    body: bytes,
) -> None:
    user = await make_user(session, username="ann")
    post = await make_post(session, user)
    headers = await auth_headers(client, user)
    if content_type:
        headers["Content-Type"] = content_type
    path = POSTS if method == "POST" else f"{POSTS}{post.id}"
    before = await snapshot(app.state.database)

    response = await client.request(method, path, content=body, headers=headers)

    assert response.status_code in {415, 422}, response.text
    assert_problem(response, response.status_code, response.json()["code"])
    assert_no_internals(response)
    assert await snapshot(app.state.database) == before


@pytest.mark.http_layer
async def test_the_sign_in_form_refuses_a_json_body(
    app: FastAPI, client: httpx.AsyncClient, session: AsyncSession
) -> None:
    await make_user(session, username="ann")
    before = await snapshot(app.state.database)

    response = await client.post(
        "/api/v1/auth/token", json={"username": "ann", "password": "correct horse battery staple"}
    )

    assert response.status_code in {415, 422}, response.text
    assert await snapshot(app.state.database) == before
