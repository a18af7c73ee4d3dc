"""Errors of every kind under /api are Conduit's `{"errors": {...}}`, whichever layer answers;
/api/v1 keeps its problem details; the OpenAPI document says so for every Conduit operation."""

from typing import Any

import httpx
import pytest
from fastapi import APIRouter

from app.core.config import Settings
from app.core.text import NOT_BLANK_NO_NUL
from app.main import create_app
from tests.conduit.helpers import assert_errors, sign_up
from tests.conftest import Serve
from tests.helpers import assert_problem

ERRORS_CONTENT = {
    "application/json": {"schema": {"$ref": "#/components/schemas/GenericErrorModel"}}
}
HTTP_METHODS = {"get", "put", "post", "delete", "patch"}


def conduit_operations(openapi: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {
        f"{method.upper()} {path}": operation
        for path, path_item in openapi["paths"].items()
        if path.startswith("/api/") and not path.startswith("/api/v1/")
        for method, operation in path_item.items()
        if method in HTTP_METHODS
    }


async def test_an_unknown_path_under_api_is_not_found_in_conduits_format(
    client: httpx.AsyncClient,
) -> None:
    conduit = await client.get("/api/no-such-thing")
    native = await client.get("/api/v1/no-such-thing")

    assert_errors(conduit, 404, {"resource": ["not found"]})
    assert_problem(native, 404, "not_found")


async def test_a_method_not_allowed_names_the_allowed_ones(client: httpx.AsyncClient) -> None:
    response = await client.delete("/api/user")

    assert_errors(response, 405, {"method": ["is not allowed"]})
    assert response.headers["Allow"] == "GET, PUT, OPTIONS"


async def test_the_feed_is_no_article_slug(client: httpx.AsyncClient) -> None:
    response = await client.put("/api/articles/feed", json={"article": {"body": "x"}})

    assert_errors(response, 405, {"method": ["is not allowed"]})
    assert response.headers["Allow"] == "GET, OPTIONS"


async def test_a_body_that_is_not_json_is_invalid(client: httpx.AsyncClient) -> None:
    broken = await client.post(
        "/api/users", content=b'{"user": ', headers={"Content-Type": "application/json"}
    )
    not_an_object = await client.post("/api/users", json=["user"])

    assert_errors(broken, 422, {"body": ["is not valid JSON"]})
    assert list(assert_errors(not_an_object, 422)) == ["body"]


async def test_a_body_over_the_limit_is_refused_in_conduits_format(
    settings: Settings, serve: Serve
) -> None:
    app = create_app(settings.model_copy(update={"MAX_REQUEST_BODY_BYTES": 1024}))
    async with serve(app) as client:
        declared = await client.post(
            "/api/users",
            content=b"{}",
            headers={"Content-Length": str(2 * 1024**3), "Content-Type": "application/json"},
        )
        counted = await client.post("/api/users", json={"user": {"username": "x" * 2000}})

    for response in (declared, counted):
        assert_errors(response, 413, {"body": ["is larger than 1024 bytes"]})
        assert response.headers["Connection"] == "close"


async def test_over_the_general_rate_limit_is_429_in_conduits_format(
    settings: Settings, serve: Serve
) -> None:
    app = create_app(settings.model_copy(update={"RATE_LIMIT_DEFAULT": "2/minute"}))
    async with serve(app) as client:
        statuses = [(await client.get("/api/user")).status_code for _ in range(2)]
        refused = await client.get("/api/user")
        native = await client.get("/api/v1/users/me")

    assert statuses == [401, 401]
    assert_errors(
        refused,
        429,
        {"rate_limit": ["is exceeded; retry after the seconds in Retry-After"]},
    )
    assert int(refused.headers["Retry-After"]) >= 1
    assert refused.headers["RateLimit-Remaining"] == "0"
    assert_problem(native, 429, "rate_limited")


async def test_a_bug_is_a_500_in_conduits_format_with_the_request_id(
    settings: Settings, serve: Serve
) -> None:
    app = create_app(settings)
    router = APIRouter()

    @router.get("/api/test-crash")
    async def crash() -> None:
        raise RuntimeError("a bug")

    app.include_router(router)
    async with serve(app) as client:
        response = await client.get("/api/test-crash")

    assert_errors(response, 500, {"server": ["had an unexpected error"]})
    assert "a bug" not in response.text


@pytest.mark.usefixtures("database_down")
async def test_a_database_that_is_down_is_a_503_in_conduits_format(
    client: httpx.AsyncClient,
) -> None:
    response = await client.post(
        "/api/users/login", json={"user": {"email": "ann@example.com", "password": "12345678"}}
    )

    assert_errors(response, 503, {"server": ["is unavailable now; retry shortly"]})
    assert response.headers["Retry-After"]


async def test_a_refused_preflight_is_answered_in_conduits_format(
    settings: Settings, serve: Serve
) -> None:
    app = create_app(settings.model_copy(update={"CORS_ORIGINS": ["http://localhost:4200"]}))
    async with serve(app) as client:
        refused = await client.options(
            "/api/user",
            headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "PUT"},
        )
        allowed = await client.options(
            "/api/user",
            headers={
                "Origin": "http://localhost:4200",
                "Access-Control-Request-Method": "PUT",
                "Access-Control-Request-Headers": "authorization, content-type",
            },
        )

    assert list(assert_errors(refused, 400)) == ["request"]
    assert allowed.status_code == 200, allowed.text
    assert "PUT" in allowed.headers["Access-Control-Allow-Methods"]


async def test_answers_are_json_and_carry_the_request_id(client: httpx.AsyncClient) -> None:
    user = await sign_up(client, "ann")

    response = await client.get("/api/user", headers={"Authorization": f"Token {user['token']}"})

    assert response.headers["content-type"] == "application/json"
    assert response.headers["X-Request-ID"]
    assert response.headers["Vary"] == "Authorization"


# --- The OpenAPI document ---------------------------------------------------------------------


@pytest.fixture
async def openapi(client: httpx.AsyncClient) -> dict[str, Any]:
    document: dict[str, Any] = (await client.get("/openapi.json")).json()
    return document


async def test_every_conduit_operation_is_tagged_and_documents_its_errors_in_conduits_format(
    openapi: dict[str, Any],
) -> None:
    operations = conduit_operations(openapi)

    assert {"POST /api/users", "POST /api/users/login", "GET /api/user", "PUT /api/user"} <= set(
        operations
    )
    for name, operation in operations.items():
        assert operation["tags"] == ["conduit"], name
        errors = {status: r for status, r in operation["responses"].items() if int(status) >= 400}
        assert {"429", "500", "503"} <= errors.keys(), name
        for status, response in errors.items():
            assert response["content"] == ERRORS_CONTENT, f"{name} {status}"
    schema = openapi["components"]["schemas"]["GenericErrorModel"]
    assert schema["properties"]["errors"]["additionalProperties"]["items"] == {"type": "string"}


async def test_required_text_is_documented_with_its_constraints(openapi: dict[str, Any]) -> None:
    schemas = openapi["components"]["schemas"]
    new_user = schemas["ConduitNewUser"]
    login = schemas["ConduitLoginUser"]
    changes = schemas["ConduitUserChanges"]

    assert set(new_user["required"]) == {"username", "email", "password"}
    assert new_user["properties"]["email"]["minLength"] == 1
    assert new_user["properties"]["password"]["minLength"] == 8
    assert login["properties"]["email"]["minLength"] == 1
    # The pattern refuses what the API refuses: text of white space only.
    assert login["properties"]["email"]["pattern"] == NOT_BLANK_NO_NUL
    assert login["properties"]["password"]["minLength"] == 1
    assert "required" not in changes
    assert {"type": "null"} in changes["properties"]["bio"]["anyOf"]
    assert "null" not in str(changes["properties"]["email"])
