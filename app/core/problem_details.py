"""RFC 9457 problem details: how the native API (/api/v1) writes and documents its errors."""

from collections.abc import Mapping
from http import HTTPStatus
from typing import Any

from pydantic import BaseModel, Field

from app.core.errors import AppError, RequestInvalid
from app.core.surfaces import OpenAPIResponses

PROBLEM_MEDIA_TYPE = "application/problem+json"
PROBLEM_TYPE_PREFIX = "urn:quill:problem:"
PROBLEM_SCHEMA_REF = "#/components/schemas/ProblemDetails"


class ValidationIssue(BaseModel):
    loc: list[str | int]
    msg: str
    type: str


class ProblemDetails(BaseModel):
    """RFC 9457 problem details, as every error of /api/v1 is answered."""

    type: str = Field(examples=[f"{PROBLEM_TYPE_PREFIX}not_found"])
    title: str = Field(examples=["Not Found"])
    status: int = Field(examples=[404])
    detail: str = Field(examples=["The resource does not exist."])
    code: str = Field(description="Stable, machine-readable error code.", examples=["not_found"])
    request_id: str | None = Field(default=None, description="The X-Request-ID of the request.")
    errors: list[ValidationIssue] | None = Field(
        default=None,
        description=(
            f"What failed validation (never the submitted values): at most "
            f"{RequestInvalid.MAX_REPORTED} entries."
        ),
    )
    error_count: int | None = Field(
        default=None, description="How many problems validation found, listed or not."
    )


_MEMBERS = frozenset(ProblemDetails.model_fields)


class ProblemDetailsRenderer:
    media_type = PROBLEM_MEDIA_TYPE

    def body(self, error: AppError, request_id: str | None) -> dict[str, Any]:
        # Extra members never stand in for the standard ones, set or not.
        extra = {key: value for key, value in error.extra.items() if key not in _MEMBERS}
        problem: dict[str, Any] = {
            **extra,
            "type": f"{PROBLEM_TYPE_PREFIX}{error.code}",
            "title": HTTPStatus(error.status_code).phrase,
            "status": error.status_code,
            "detail": error.detail,
            "code": error.code,
        }
        if request_id is not None:
            problem["request_id"] = request_id
        if isinstance(error, RequestInvalid):
            problem["errors"] = [
                {"loc": list(issue.loc), "msg": issue.msg, "type": issue.type}
                for issue in error.problems
            ]
            problem["error_count"] = error.total
        return problem

    def openapi_components(self) -> Mapping[str, Any]:
        definitions = ProblemDetails.model_json_schema(ref_template="#/components/schemas/{model}")
        return {**definitions.pop("$defs", {}), "ProblemDetails": definitions}

    def openapi_responses(self, *statuses: int) -> OpenAPIResponses:
        return problem_responses(*statuses)


def problem_responses(*statuses: int) -> OpenAPIResponses:
    """The `responses=` of a route: each status documented as a problem details body."""
    return {
        status: {
            "description": HTTPStatus(status).phrase,
            "content": {PROBLEM_MEDIA_TYPE: {"schema": {"$ref": PROBLEM_SCHEMA_REF}}},
        }
        for status in statuses
    }
