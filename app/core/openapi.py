"""The OpenAPI document as FastAPI builds it, with each surface's errors described as it sends them.

FastAPI documents every validation failure with its own HTTPValidationError body; each surface
replaces that, in its own operations only, with its renderer's schema. Everything else FastAPI
takes from the app (tags, servers, description, webhooks...) is left as it made it.
"""

from typing import Any

from fastapi import FastAPI

from app.core.error_handlers import HTTP_METHODS
from app.core.surfaces import Surface, Surfaces

_FASTAPI_VALIDATION_SCHEMAS = ("HTTPValidationError", "ValidationError")
_HTTP_METHODS = {method.lower() for method in HTTP_METHODS} | {"trace"}


def install_openapi(app: FastAPI, surfaces: Surfaces) -> None:
    build = app.openapi  # FastAPI's own: builds from the app's settings once, then caches

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = build()
            for surface in surfaces:
                _document_errors(schema, surfaces, surface)
            _drop_fastapi_validation_schemas(schema)
        return app.openapi_schema or {}

    app.openapi = openapi  # type: ignore[method-assign]


def _document_errors(schema: dict[str, Any], surfaces: Surfaces, surface: Surface) -> None:
    validation_failed = surface.renderer.openapi_responses(422)[422]
    documented = False
    for path, path_item in schema.get("paths", {}).items():
        if surfaces.for_path(path) is not surface:
            continue
        for method, operation in path_item.items():
            responses = operation.get("responses", {}) if method in _HTTP_METHODS else {}
            if "422" in responses:
                responses["422"] = {**validation_failed, "description": "Validation Error"}
            documented = documented or any(int(status) >= 400 for status in responses)
    if documented:
        components = schema.setdefault("components", {}).setdefault("schemas", {})
        components.update(surface.renderer.openapi_components())


def _drop_fastapi_validation_schemas(schema: dict[str, Any]) -> None:
    """Every surface has replaced FastAPI's 422 body with its own: its schemas would mislead."""
    components = schema.get("components", {}).get("schemas", {})
    for name in _FASTAPI_VALIDATION_SCHEMAS:
        components.pop(name, None)
