"""A second API surface: its errors, its token scheme and its documentation are its own."""

from typing import Any

import pytest
from fastapi import APIRouter, FastAPI
from pydantic import BaseModel

from app.auth.dependencies import CurrentUser
from app.core.config import Settings
from app.core.errors import AppError, NotFound, RequestInvalid
from app.core.surfaces import OpenAPIResponses, Surface
from app.main import create_app
from tests.conftest import Serve
from tests.factories import login, make_user
from tests.helpers import assert_problem, open_session

PREFIX = "/test-surface"


class FieldErrors:
    """`{"errors": {field: [message]}}`, as the Conduit surface will write its errors."""

    media_type = "application/json"

    def body(self, error: AppError, request_id: str | None) -> dict[str, Any]:
        if isinstance(error, RequestInvalid):
            return {"errors": {str(p.loc[-1]): [p.msg] for p in error.problems}}
        return {"errors": {error.field or "body": [error.detail]}}

    def openapi_components(self) -> dict[str, Any]:
        return {"FieldErrors": {"type": "object", "properties": {"errors": {"type": "object"}}}}

    def openapi_responses(self, *statuses: int) -> OpenAPIResponses:
        schema = {"schema": {"$ref": "#/components/schemas/FieldErrors"}}
        return {
            status: {"description": "Error", "content": {self.media_type: schema}}
            for status in statuses
        }


class Echo(BaseModel):
    name: str


@pytest.fixture
def two_surface_app(settings: Settings) -> FastAPI:
    app = create_app(settings)
    app.state.surfaces.register(
        Surface(prefix=PREFIX, renderer=FieldErrors(), authorization_schemes=("Token",))
    )
    router = APIRouter(prefix=PREFIX)

    @router.get("/missing")
    async def missing() -> None:
        raise NotFound(field="article")

    @router.post("/echo")
    async def echo(body: Echo) -> Echo:
        return body

    @router.get("/crash")
    async def crash() -> None:
        raise RuntimeError("a bug")

    @router.get("/me")
    async def me(user: CurrentUser) -> str:
        return user.username

    app.include_router(router)
    return app


async def test_errors_under_a_surface_are_written_by_its_renderer(
    two_surface_app: FastAPI, serve: Serve
) -> None:
    async with serve(two_surface_app) as client:
        missing = await client.get(f"{PREFIX}/missing")
        invalid = await client.post(f"{PREFIX}/echo", json={"name": 7})
        crash = await client.get(f"{PREFIX}/crash")
        no_route = await client.get(f"{PREFIX}/no-such-thing")
        native = await client.get("/api/v1/posts/999999")

    assert (missing.status_code, missing.json()) == (
        404,
        {"errors": {"article": [NotFound.default_detail]}},
    )
    assert invalid.status_code == 422
    assert invalid.json() == {"errors": {"name": ["Input should be a valid string"]}}
    assert crash.status_code == 500
    assert crash.json() == {"errors": {"body": ["An unexpected error occurred."]}}
    assert crash.headers["X-Request-ID"]
    assert no_route.status_code == 404
    assert set(no_route.json()) == {"errors"}
    assert_problem(native, 404, "post_not_found")


async def test_a_surface_reads_the_token_in_its_own_scheme(
    two_surface_app: FastAPI, serve: Serve
) -> None:
    async with serve(two_surface_app) as client:
        async with open_session(two_surface_app.state.database) as session:
            await make_user(session, username="ann")
        token = (await login(client, "ann"))["access_token"]

        own = await client.get(f"{PREFIX}/me", headers={"Authorization": f"Token {token}"})
        bearer = await client.get(f"{PREFIX}/me", headers={"Authorization": f"Bearer {token}"})
        anonymous = await client.get(f"{PREFIX}/me")
        native = await client.get("/api/v1/users/me", headers={"Authorization": f"Token {token}"})

    assert (own.status_code, own.json()) == (200, "ann")
    assert bearer.status_code == 401
    assert anonymous.status_code == 401
    assert anonymous.headers["WWW-Authenticate"] == "Token"
    assert_problem(native, 401, "not_authenticated")
    assert native.headers["WWW-Authenticate"] == "Bearer"


async def test_each_surface_documents_its_own_errors_only(
    two_surface_app: FastAPI, serve: Serve
) -> None:
    async with serve(two_surface_app) as client:
        document = (await client.get("/openapi.json")).json()

    echo_422 = document["paths"][f"{PREFIX}/echo"]["post"]["responses"]["422"]
    native_422 = document["paths"]["/api/v1/users/"]["post"]["responses"]["422"]
    assert echo_422["content"] == {
        "application/json": {"schema": {"$ref": "#/components/schemas/FieldErrors"}}
    }
    assert native_422["content"] == {
        "application/problem+json": {"schema": {"$ref": "#/components/schemas/ProblemDetails"}}
    }
    assert {"FieldErrors", "ProblemDetails"} <= set(document["components"]["schemas"])
    assert "HTTPValidationError" not in document["components"]["schemas"]


def test_a_surface_may_accept_several_schemes_and_asks_for_its_first() -> None:
    surface = Surface(
        prefix=PREFIX, renderer=FieldErrors(), authorization_schemes=("Token", "Bearer")
    )

    assert surface.authorization_scheme == "Token"
    assert surface.accepts_scheme("bearer")
    assert surface.accepts_scheme("TOKEN")
    assert not surface.accepts_scheme("Basic")


def test_a_surface_accepts_at_least_one_scheme() -> None:
    with pytest.raises(ValueError, match="at least one authorization scheme"):
        Surface(prefix=PREFIX, renderer=FieldErrors(), authorization_schemes=())
