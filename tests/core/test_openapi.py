"""The OpenAPI document: FastAPI's own, with errors described as each surface sends them."""

import re
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.config import Settings
from app.core.text import NO_NUL, NOT_BLANK_NO_NUL
from app.main import create_app
from tests.conftest import Serve
from tests.factories import auth_headers, make_user

PROBLEM_CONTENT = {
    "application/problem+json": {"schema": {"$ref": "#/components/schemas/ProblemDetails"}}
}
HTTP_METHODS = {"get", "put", "post", "delete", "options", "head", "patch", "trace"}


def api_operations(
    openapi: dict[str, Any], prefix: str = "/api/v1/"
) -> Iterator[tuple[str, dict[str, Any]]]:
    for path, path_item in openapi["paths"].items():
        if path.startswith(prefix):
            for method, operation in path_item.items():
                if method in HTTP_METHODS:
                    yield f"{method.upper()} {path}", operation


def references(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref":
                yield value
            else:
                yield from references(value)
    elif isinstance(node, list):
        for item in node:
            yield from references(item)


def schema_of(openapi: dict[str, Any], name: str) -> dict[str, Any]:
    schema: dict[str, Any] = openapi["components"]["schemas"][name]
    return schema


@pytest.fixture
async def openapi(client: httpx.AsyncClient) -> dict[str, Any]:
    response = await client.get("/openapi.json")
    assert response.status_code == 200
    document: dict[str, Any] = response.json()
    return document


async def test_openapi_document_is_served_and_every_reference_resolves(
    openapi: dict[str, Any],
) -> None:
    assert openapi["openapi"].startswith("3.")
    assert openapi["info"]["title"] == "Quill"
    schemas = openapi["components"]["schemas"]
    prefix = "#/components/schemas/"
    for reference in set(references(openapi)):
        assert reference.startswith(prefix), reference
        assert reference.removeprefix(prefix) in schemas, reference


async def test_every_api_operation_documents_its_errors_as_problem_details(
    openapi: dict[str, Any],
) -> None:
    operations = dict(api_operations(openapi))
    assert len(operations) >= 15

    for name, operation in operations.items():
        errors = {
            status: response
            for status, response in operation["responses"].items()
            if int(status) >= 400
        }
        assert {"500", "503"} <= errors.keys(), name
        for status, response in errors.items():
            assert response["content"] == PROBLEM_CONTENT, f"{name} {status}"


async def test_validation_responses_are_documented_as_problem_details(
    openapi: dict[str, Any],
) -> None:
    validated = [
        (name, operation["responses"]["422"])
        for name, operation in api_operations(openapi)
        if "422" in operation["responses"]
    ]

    assert "POST /api/v1/users/" in dict(validated)
    for name, response in validated:
        assert response["content"] == PROBLEM_CONTENT, name


async def test_openapi_describes_problem_details_not_fastapis_default_error(
    openapi: dict[str, Any],
) -> None:
    schemas = openapi["components"]["schemas"]

    assert "HTTPValidationError" not in schemas
    assert "ValidationError" not in schemas
    problem = schemas["ProblemDetails"]
    assert set(problem["required"]) == {"type", "title", "status", "detail", "code"}
    assert problem["properties"]["errors"]["anyOf"][0]["items"] == {
        "$ref": "#/components/schemas/ValidationIssue"
    }
    assert set(schemas["ValidationIssue"]["properties"]) == {"loc", "msg", "type"}


async def test_the_apps_own_openapi_settings_survive_the_rewrite(
    settings: Settings, serve: Serve
) -> None:
    app = create_app(settings)
    app.description = "The API behind example.com."
    app.servers = [{"url": "https://api.example.com"}]
    app.openapi_tags = [{"name": "posts", "description": "What people write."}]

    async with serve(app) as client:
        document = (await client.get("/openapi.json")).json()

    assert document["info"]["description"] == "The API behind example.com."
    assert document["servers"] == [{"url": "https://api.example.com"}]
    assert document["tags"] == [{"name": "posts", "description": "What people write."}]
    assert schema_of(document, "ProblemDetails")


@pytest.mark.parametrize(
    ("schema", "not_nullable", "nullable"),
    [
        ("PostUpdate", {"title", "description", "content", "tags"}, set()),
        ("UserUpdate", {"username", "email", "password", "current_password"}, {"bio", "image"}),
        ("AdminUserUpdate", {"is_active", "is_superuser"}, set()),
    ],
)
async def test_partial_updates_document_exactly_which_fields_accept_null(
    openapi: dict[str, Any], schema: str, not_nullable: set[str], nullable: set[str]
) -> None:
    properties = schema_of(openapi, schema)["properties"]

    assert set(properties) == not_nullable | nullable
    assert "required" not in schema_of(openapi, schema)
    for name in not_nullable:
        assert "null" not in str(properties[name]), name
    for name in nullable:
        assert {"type": "null"} in properties[name]["anyOf"], name


async def test_write_schemas_refuse_unknown_fields_in_the_document_too(
    openapi: dict[str, Any],
) -> None:
    for name in ("PostCreate", "PostUpdate", "UserCreate", "UserUpdate", "AdminUserUpdate"):
        assert schema_of(openapi, name)["additionalProperties"] is False, name


_BY_POST_ID = {"post_id": "$response.body#/id"}
_BY_USER_ID = {"user_id": "$response.body#/id"}


@pytest.mark.parametrize(
    ("operation", "links"),
    [
        (
            "POST /api/v1/posts/",
            {
                "get_post": _BY_POST_ID,
                "update_post": _BY_POST_ID,
                "delete_post": _BY_POST_ID,
                "favorite_post": _BY_POST_ID,
                "unfavorite_post": _BY_POST_ID,
                "list_comments": _BY_POST_ID,
                "add_comment": _BY_POST_ID,
            },
        ),
        (
            "POST /api/v1/users/",
            {
                "get_user": _BY_USER_ID,
                "list_user_posts": _BY_USER_ID,
                "follow_user": _BY_USER_ID,
                "unfollow_user": _BY_USER_ID,
            },
        ),
        (
            "POST /api/articles",
            {
                name: {"slug": "$response.body#/article/slug"}
                for name in (
                    "conduit_get_article",
                    "conduit_delete_article",
                    "conduit_favorite",
                    "conduit_unfavorite",
                    "conduit_list_comments",
                    "conduit_add_comment",
                )
            },
        ),
        (
            "POST /api/users",
            {
                "conduit_get_profile": {"username": "$response.body#/user/username"},
                "conduit_follow": {"username": "$response.body#/user/username"},
            },
        ),
        (
            "POST /api/articles/{slug}/comments",
            {
                "conduit_delete_comment": {
                    "slug": "$request.path.slug",
                    "id": "$response.body#/comment/id",
                }
            },
        ),
        (
            "POST /api/v1/posts/{post_id}/comments",
            {
                "delete_comment": {
                    "post_id": "$response.body#/post_id",
                    "comment_id": "$response.body#/id",
                }
            },
        ),
    ],
)
async def test_a_created_resource_links_to_what_can_be_done_with_it(
    openapi: dict[str, Any], operation: str, links: dict[str, dict[str, str]]
) -> None:
    # Both surfaces: /api/v1 and Conduit's /api.
    operations = dict(api_operations(openapi, prefix="/api/"))
    operation_ids = {op["operationId"] for op in operations.values()}

    documented = operations[operation]["responses"]["201"]["links"]

    assert {name: link["parameters"] for name, link in documented.items()} == links
    for link in documented.values():
        assert link["operationId"] in operation_ids


async def test_operation_ids_are_the_route_names(openapi: dict[str, Any]) -> None:
    operations = dict(api_operations(openapi))

    assert operations["GET /api/v1/posts/{post_id}"]["operationId"] == "get_post"
    assert len({op["operationId"] for op in operations.values()}) == len(operations)


async def test_operations_open_to_anonymous_callers_say_authentication_is_optional(
    openapi: dict[str, Any],
) -> None:
    operations = dict(api_operations(openapi))
    optional = {name for name, op in operations.items() if {} in op.get("security", [])}

    assert optional == {
        "GET /api/v1/posts/",
        "GET /api/v1/posts/by-slug/{slug}",
        "GET /api/v1/posts/{post_id}",
        "GET /api/v1/posts/{post_id}/comments",
        "GET /api/v1/tags",
        "GET /api/v1/users/{user_id}",
        "GET /api/v1/users/{user_id}/posts",
    }
    for name in optional:
        assert {"AccessToken": []} in operations[name]["security"], name


async def test_the_rules_of_text_fields_are_published_as_the_patterns_that_check_them(
    openapi: dict[str, Any],
) -> None:
    post = schema_of(openapi, "PostCreate")["properties"]
    user = schema_of(openapi, "UserUpdate")["properties"]

    assert post["title"]["pattern"] == NOT_BLANK_NO_NUL
    assert post["content"]["pattern"] == NOT_BLANK_NO_NUL
    assert post["title"]["maxLength"] == 200
    assert [branch.get("pattern") for branch in user["bio"]["anyOf"]] == [NO_NUL, None]


async def test_a_tags_published_pattern_refuses_what_the_api_refuses(
    openapi: dict[str, Any], client: httpx.AsyncClient, session: AsyncSession
) -> None:
    # A blank tag and one with a control character are both refused: the one pattern published
    # says so, or a client following the schema sends " " and gets a 422 (the fuzzer found it).
    pattern = re.compile(schema_of(openapi, "PostCreate")["properties"]["tags"]["items"]["pattern"])
    headers = await auth_headers(client, await make_user(session))
    for tag in (" ", "\u3000", "gar\x01den"):
        response = await client.post(
            "/api/v1/posts/", json={"title": "T", "content": "C", "tags": [tag]}, headers=headers
        )
        assert response.status_code == 422, tag
        assert pattern.search(tag) is None, tag
    assert pattern.search(" garden ") is not None


async def test_a_password_or_email_change_is_documented_to_need_the_current_password(
    openapi: dict[str, Any],
) -> None:
    update = schema_of(openapi, "UserUpdate")

    assert update["dependentRequired"] == {
        "password": ["current_password"],
        "email": ["current_password"],
    }
    assert update["properties"]["current_password"]["minLength"] == 1


async def test_write_operations_come_with_examples_for_the_fuzzers_examples_phase(
    openapi: dict[str, Any],
) -> None:
    for name in ("PostCreate", "PostUpdate", "UserCreate", "UserUpdate", "AdminUserUpdate"):
        assert schema_of(openapi, name)["examples"], name
