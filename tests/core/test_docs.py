import re
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

PROBLEM_CONTENT = {
    "application/problem+json": {"schema": {"$ref": "#/components/schemas/ProblemDetails"}}
}
HTTP_METHODS = {"get", "put", "post", "delete", "options", "head", "patch", "trace"}


def local_assets(html: str) -> set[str]:
    return set(re.findall(r'(?:src|href)="(/docs-assets/[^"]+)"', html))


def api_operations(openapi: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    for path, path_item in openapi["paths"].items():
        if path.startswith("/api/v1/"):
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


@pytest.fixture
async def openapi(client: httpx.AsyncClient) -> dict[str, Any]:
    response = await client.get("/openapi.json")
    assert response.status_code == 200
    document: dict[str, Any] = response.json()
    return document


@pytest.mark.parametrize(
    ("page", "assets"),
    [
        ("/docs", {"swagger-ui-bundle.js", "swagger-ui.css", "favicon.png"}),
        ("/redoc", {"redoc.standalone.js", "favicon.png"}),
    ],
)
async def test_docs_pages_load_only_assets_served_by_quill(
    client: httpx.AsyncClient, page: str, assets: set[str]
) -> None:
    response = await client.get(page)

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    html = response.text
    assert "cdn" not in html.lower()
    assert "http://" not in html
    assert "https://" not in html
    assert "/openapi.json" in html
    assert local_assets(html) == {f"/docs-assets/{name}" for name in assets}
    for asset in local_assets(html):
        served = await client.get(asset)
        assert served.status_code == 200, asset
        assert served.content


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
