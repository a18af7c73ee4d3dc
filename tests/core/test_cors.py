from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI

from app.core.config import Settings
from app.main import create_app
from tests.conftest import Serve
from tests.helpers import assert_problem

LISTED = "https://app.example.com"
UNLISTED = "https://evil.example"
POSTS = "/api/v1/posts/"
ALLOW_ORIGIN = "Access-Control-Allow-Origin"


def preflight(
    origin: str, *, headers: str = "authorization,content-type", method: str = "POST"
) -> dict[str, str]:
    """The headers of a browser's preflight before a request with this method and headers."""
    return {
        "Origin": origin,
        "Access-Control-Request-Method": method,
        "Access-Control-Request-Headers": headers,
    }


@pytest.fixture
async def cors_client(settings: Settings, serve: Serve) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(settings.model_copy(update={"CORS_ORIGINS": [LISTED]}))
    async with serve(app) as client:
        yield client


def vary(response: httpx.Response) -> set[str]:
    return {value.strip() for value in response.headers.get("Vary", "").split(",")}


@pytest.mark.parametrize(("path", "status"), [(POSTS, 200), ("/api/v1/users/me", 401)])
async def test_a_listed_origin_may_read_answers_errors_included(
    cors_client: httpx.AsyncClient, path: str, status: int
) -> None:
    response = await cors_client.get(path, headers={"Origin": LISTED})

    assert response.status_code == status
    assert response.headers[ALLOW_ORIGIN] == LISTED
    assert "Origin" in vary(response)
    assert "Access-Control-Allow-Credentials" not in response.headers
    exposed = response.headers["Access-Control-Expose-Headers"]
    assert {"Location", "X-Request-ID", "Retry-After"} <= set(exposed.split(", "))


async def test_a_listed_origin_passes_the_preflight_of_an_authenticated_write(
    cors_client: httpx.AsyncClient,
) -> None:
    response = await cors_client.options(POSTS, headers=preflight(LISTED))

    assert response.status_code == 200
    assert response.headers[ALLOW_ORIGIN] == LISTED
    assert "POST" in response.headers["Access-Control-Allow-Methods"]
    allowed_headers = response.headers["Access-Control-Allow-Headers"].lower().split(", ")
    assert {"authorization", "content-type"} <= set(allowed_headers)
    assert "Access-Control-Allow-Credentials" not in response.headers
    assert response.headers["X-Frame-Options"] == "DENY"


@pytest.mark.parametrize("method", ["GET", "POST", "PUT", "PATCH", "DELETE"])
async def test_a_listed_origin_may_use_every_method_the_api_serves(
    cors_client: httpx.AsyncClient, method: str
) -> None:
    # PUT too: the Conduit API updates with it (PUT /api/user, PUT /api/articles/{slug}).
    response = await cors_client.options(POSTS, headers=preflight(LISTED, method=method))

    assert response.status_code == 200
    assert method in response.headers["Access-Control-Allow-Methods"].split(", ")


async def test_an_unlisted_origin_is_never_reflected(cors_client: httpx.AsyncClient) -> None:
    simple = await cors_client.get(POSTS, headers={"Origin": UNLISTED})
    refused = await cors_client.options(POSTS, headers=preflight(UNLISTED))

    assert simple.status_code == 200
    assert ALLOW_ORIGIN not in simple.headers
    assert "Origin" in vary(simple)
    assert_problem(refused, 400, "cross_origin_refused")
    assert ALLOW_ORIGIN not in refused.headers
    assert "Access-Control-Allow-Methods" not in refused.headers
    assert UNLISTED not in refused.text


async def test_a_preflight_for_a_header_not_allowed_is_refused(
    cors_client: httpx.AsyncClient,
) -> None:
    response = await cors_client.options(POSTS, headers=preflight(LISTED, headers="x-custom"))

    assert_problem(response, 400, "cross_origin_refused")
    assert ALLOW_ORIGIN not in response.headers


async def test_any_origin_is_allowed_without_credentials_and_never_reflected(
    settings: Settings, serve: Serve
) -> None:
    app = create_app(settings.model_copy(update={"CORS_ORIGINS": ["*"]}))
    async with serve(app) as client:
        simple = await client.get(POSTS, headers={"Origin": UNLISTED})
        checked = await client.options(POSTS, headers=preflight(UNLISTED))

    for response in (simple, checked):
        assert response.status_code == 200
        assert response.headers[ALLOW_ORIGIN] == "*"
        assert "Access-Control-Allow-Credentials" not in response.headers


async def test_without_cors_origins_no_origin_may_read_and_there_is_no_preflight(
    client: httpx.AsyncClient, app: FastAPI
) -> None:
    assert app.state.settings.CORS_ORIGINS == []

    simple = await client.get(POSTS, headers={"Origin": LISTED})
    checked = await client.options(POSTS, headers=preflight(LISTED))

    assert simple.status_code == 200
    assert ALLOW_ORIGIN not in simple.headers
    # An OPTIONS like any other: what the path serves, and no grant a browser would act on.
    assert checked.status_code == 204
    assert checked.headers["Allow"] == "GET, POST, OPTIONS"
    assert ALLOW_ORIGIN not in checked.headers
    assert "Access-Control-Allow-Methods" not in checked.headers
