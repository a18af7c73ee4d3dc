from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from app.core.config import Environment, Settings
from app.core.hosts import HostFreeLocationMiddleware, host_of
from app.main import create_app
from tests.conftest import Serve
from tests.factories import auth_headers, make_user
from tests.helpers import assert_problem

EVIL = {"Host": "evil.example"}
PUBLIC_BASE_URL = "https://api.example.com"
NEW_USER = {"username": "ann", "email": "ann@example.com", "password": "a long passphrase"}


def app_with(settings: Settings, **changes: Any) -> FastAPI:
    return create_app(settings.model_copy(update=changes))


@pytest.mark.parametrize(
    "host",
    [
        "api.example.com",
        "API.Example.COM",
        "api.example.com:8443",
        "api.example.com.",
        "a.b.example.org",
    ],
)
async def test_a_listed_host_is_served(settings: Settings, serve: Serve, host: str) -> None:
    app = app_with(settings, ALLOWED_HOSTS=["api.example.com", "*.example.org"])
    async with serve(app) as client:
        response = await client.get("/health", headers={"Host": host})

    assert response.status_code == 200, response.text


@pytest.mark.parametrize(
    "host",
    [
        "evil.example",
        "example.org",  # *.example.org names its subdomains, not itself
        "api.example.com.evil.example",
        "evil.example@api.example.com",
        "api.example.com:notaport",
        "",
    ],
)
async def test_any_other_host_gets_a_400_problem_that_does_not_echo_it(
    settings: Settings, serve: Serve, host: str
) -> None:
    app = app_with(settings, ALLOWED_HOSTS=["api.example.com", "*.example.org"])
    async with serve(app) as client:
        response = await client.get("/health", headers={"Host": host})

    assert_problem(response, 400, "host_not_allowed")
    assert "evil" not in response.text
    assert response.headers["X-Frame-Options"] == "DENY"


async def test_production_answers_only_localhost_unless_told_otherwise(
    settings: Settings, serve: Serve
) -> None:
    production = settings.model_copy(update={"ENVIRONMENT": Environment.PRODUCTION})
    assert production.allowed_hosts == ["localhost", "127.0.0.1"]

    async with serve(create_app(production)) as client:
        local = await client.get("/health", headers={"Host": "127.0.0.1:8000"})
        evil = await client.get("/health", headers=EVIL)

    assert local.status_code == 200
    assert_problem(evil, 400, "host_not_allowed")


async def test_outside_production_any_host_is_served_until_allowed_hosts_is_set(
    client: httpx.AsyncClient, settings: Settings
) -> None:
    assert settings.allowed_hosts == ["*"]

    response = await client.get("/health", headers=EVIL)

    assert response.status_code == 200


async def test_a_created_post_is_located_by_a_path_never_by_the_host_sent(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    ann = await make_user(session, username="ann")
    headers = await auth_headers(client, ann)

    response = await client.post(
        "/api/v1/posts/", json={"title": "T", "content": "C"}, headers={**headers, **EVIL}
    )

    assert response.status_code == 201, response.text
    assert response.headers["Location"] == f"/api/v1/posts/{response.json()['id']}"


async def test_a_new_account_is_located_by_a_path_never_by_the_host_sent(
    client: httpx.AsyncClient,
) -> None:
    response = await client.post("/api/v1/users/", json=NEW_USER, headers=EVIL)

    assert response.status_code == 201, response.text
    assert response.headers["Location"] == f"/api/v1/users/{response.json()['id']}"


async def test_links_are_absolute_under_the_public_base_url(
    settings: Settings, serve: Serve, session: AsyncSession
) -> None:
    app = app_with(settings, PUBLIC_BASE_URL=PUBLIC_BASE_URL)
    async with serve(app) as client:
        signup = await client.post("/api/v1/users/", json=NEW_USER, headers=EVIL)
        ann = await make_user(session, username="bob")
        headers = await auth_headers(client, ann)
        post = await client.post(
            "/api/v1/posts/", json={"title": "T", "content": "C"}, headers={**headers, **EVIL}
        )

    assert signup.headers["Location"] == f"{PUBLIC_BASE_URL}/api/v1/users/{signup.json()['id']}"
    assert post.headers["Location"] == f"{PUBLIC_BASE_URL}/api/v1/posts/{post.json()['id']}"


@pytest.mark.parametrize("method", ["GET", "POST"])
async def test_the_trailing_slash_redirect_is_a_path_never_the_host_sent(
    client: httpx.AsyncClient, method: str
) -> None:
    response = await client.request(method, "/api/v1/posts?limit=5", headers=EVIL)

    assert response.status_code == 307
    assert response.headers["Location"] == "/api/v1/posts/?limit=5"


async def test_the_trailing_slash_redirect_goes_to_the_public_base_url(
    settings: Settings, serve: Serve
) -> None:
    async with serve(app_with(settings, PUBLIC_BASE_URL=PUBLIC_BASE_URL)) as client:
        response = await client.get("/api/v1/posts?limit=5", headers=EVIL)

    assert response.status_code == 307
    assert response.headers["Location"] == f"{PUBLIC_BASE_URL}/api/v1/posts/?limit=5"


async def test_relative_links_keep_the_root_path_quill_is_mounted_at(app: FastAPI) -> None:
    transport = httpx.ASGITransport(app=app, root_path="/quill")
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        redirect = await client.get("/quill/api/v1/posts", headers=EVIL)
        signup = await client.post("/quill/api/v1/users/", json=NEW_USER, headers=EVIL)

    assert redirect.status_code == 307
    assert redirect.headers["Location"] == "/quill/api/v1/posts/"
    assert signup.status_code == 201, signup.text
    assert signup.headers["Location"] == f"/quill/api/v1/users/{signup.json()['id']}"


def redirecting_to(location: str) -> HostFreeLocationMiddleware:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await Response(status_code=302, headers={"Location": location})(scope, receive, send)

    return HostFreeLocationMiddleware(app, public_base_url=PUBLIC_BASE_URL)


@pytest.mark.parametrize(
    ("location", "rewritten"),
    [
        ("http://evil.example/api/v1/posts/", f"{PUBLIC_BASE_URL}/api/v1/posts/"),
        ("http://EVIL.example/a?b=c#d", f"{PUBLIC_BASE_URL}/a?b=c#d"),
        ("http://evil.example", f"{PUBLIC_BASE_URL}/"),
        # Elsewhere, or already public: as it was.
        ("https://evil.example/a", "https://evil.example/a"),
        ("http://other.example/a", "http://other.example/a"),
        (f"{PUBLIC_BASE_URL}/a", f"{PUBLIC_BASE_URL}/a"),
        ("/a", "/a"),
    ],
)
async def test_only_a_location_on_the_host_sent_is_rewritten(location: str, rewritten: str) -> None:
    transport = httpx.ASGITransport(app=redirecting_to(location))
    async with httpx.AsyncClient(transport=transport, base_url="http://evil.example") as client:
        response = await client.get("/")

    assert response.headers["Location"] == rewritten


async def test_a_relative_link_never_starts_with_two_slashes() -> None:
    middleware = redirecting_to("http://evil.example//elsewhere.example/a")
    middleware.public_base_url = ""
    transport = httpx.ASGITransport(app=middleware)
    async with httpx.AsyncClient(transport=transport, base_url="http://evil.example") as client:
        response = await client.get("/")

    assert response.headers["Location"] == "/%2Felsewhere.example/a"


@pytest.mark.parametrize(
    ("header", "host"),
    [
        ("Example.COM", "example.com"),
        ("example.com:8080", "example.com"),
        ("example.com.", "example.com"),
        ("[::1]:8000", "[::1]"),
        ("127.0.0.1", "127.0.0.1"),
        ("user@example.com", None),
        ("example.com/path", None),
        ("example.com:", None),
        ("", None),
        (None, None),
    ],
)
def test_host_of_reads_a_host_header(header: str | None, host: str | None) -> None:
    assert host_of(header) == host
