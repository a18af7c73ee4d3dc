"""One error family, one way to render it: RFC 9457 problem details on every 4xx and 5xx."""

from collections.abc import Mapping, Sequence
from http import HTTPStatus
from typing import Any, ClassVar

import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from sqlalchemy import exc as sa_exc
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match, Mount

log = structlog.get_logger(__name__)

PROBLEM_MEDIA_TYPE = "application/problem+json"
PROBLEM_TYPE_PREFIX = "urn:quill:problem:"


class AppError(Exception):
    """A failure the client can act on. Subclasses set the status and a stable code."""

    status_code: ClassVar[int] = 400
    code: ClassVar[str] = "bad_request"
    detail: ClassVar[str] = "The request cannot be processed."
    headers: ClassVar[Mapping[str, str]] = {}
    # The request's changes are committed although the request fails (see get_session).
    keeps_changes: ClassVar[bool] = False

    def __init__(self, detail: str | None = None) -> None:
        self.message = detail or self.detail
        super().__init__(self.message)


class NotAuthenticated(AppError):
    status_code = 401
    code = "not_authenticated"
    detail = "Authentication is required, or the credentials given are not valid."
    headers: ClassVar[Mapping[str, str]] = {"WWW-Authenticate": "Bearer"}


class PermissionDenied(AppError):
    status_code = 403
    code = "permission_denied"
    detail = "You are not allowed to do this."


class NotFound(AppError):
    status_code = 404
    code = "not_found"
    detail = "The resource does not exist."


class Conflict(AppError):
    status_code = 409
    code = "conflict"
    detail = "The request conflicts with the current state of the resource."


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
        default=None, description="What failed validation (never the submitted values)."
    )


_STATUS_CODES: dict[int, str] = {
    400: "bad_request",
    401: "not_authenticated",
    403: "permission_denied",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "validation_failed",
    429: "too_many_requests",
    500: "internal_error",
    503: "service_unavailable",
}


def code_for_status(status: int) -> str:
    if status in _STATUS_CODES:
        return _STATUS_CODES[status]
    return HTTPStatus(status).phrase.lower().replace(" ", "_").replace("-", "_")


def request_id_of(scope_state: Mapping[str, Any] | None) -> str | None:
    if not scope_state:
        return None
    request_id = scope_state.get("request_id")
    return request_id if isinstance(request_id, str) else None


def problem_body(
    status: int,
    detail: str,
    *,
    code: str | None = None,
    request_id: str | None = None,
    errors: Sequence[ValidationIssue] | None = None,
) -> dict[str, Any]:
    code = code or code_for_status(status)
    problem = ProblemDetails(
        type=f"{PROBLEM_TYPE_PREFIX}{code}",
        title=HTTPStatus(status).phrase,
        status=status,
        detail=detail,
        code=code,
        request_id=request_id,
        errors=list(errors) if errors is not None else None,
    )
    return problem.model_dump(mode="json", exclude_none=True)


def problem_response(
    request: Request,
    status: int,
    detail: str,
    *,
    code: str | None = None,
    headers: Mapping[str, str] | None = None,
    errors: Sequence[ValidationIssue] | None = None,
) -> JSONResponse:
    body = problem_body(
        status,
        detail,
        code=code,
        request_id=request_id_of(request.scope.get("state")),
        errors=errors,
    )
    return JSONResponse(body, status_code=status, headers=headers, media_type=PROBLEM_MEDIA_TYPE)


def validation_issues(raw_errors: Sequence[Any]) -> list[ValidationIssue]:
    # Only loc, msg and type: `input` holds the submitted value (a password, say) and `ctx`
    # may hold exception objects.
    return [
        ValidationIssue(loc=list(error["loc"]), msg=str(error["msg"]), type=str(error["type"]))
        for error in raw_errors
    ]


async def _handle_app_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, AppError)
    return problem_response(
        request, exc.status_code, exc.message, code=exc.code, headers=exc.headers
    )


async def _handle_http_exception(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    detail = exc.detail if isinstance(exc.detail, str) else HTTPStatus(exc.status_code).phrase
    headers = exc.headers
    if exc.status_code == 405 and (allowed := allowed_methods(request)):
        headers = {**(headers or {}), "Allow": ", ".join(allowed)}
    return problem_response(request, exc.status_code, detail, headers=headers)


_HTTP_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")


def allowed_methods(request: Request) -> list[str]:
    """Every method some route serves at the request's path (mounted apps answer for themselves).

    The router's own 405 names only the methods of the first route matching the path, but a path
    such as /posts/{post_id} has one route per method.
    """
    routes = [route for route in request.app.router.routes if not isinstance(route, Mount)]
    root_path = request.scope.get("app_root_path", request.scope.get("root_path", ""))
    allowed = []
    for method in _HTTP_METHODS:
        probe = {
            "type": "http",
            "method": method,
            "path": request.scope["path"],
            "root_path": root_path,
            "headers": [],
        }
        if any(route.matches(dict(probe))[0] is Match.FULL for route in routes):
            allowed.append(method)
    return allowed


async def _handle_validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    return problem_response(
        request,
        422,
        "The request is not valid; see errors.",
        errors=validation_issues(exc.errors()),
    )


async def _handle_integrity_error(request: Request, exc: Exception) -> JSONResponse:
    # A unique constraint that two requests raced for: the loser is told it conflicts.
    log.info("db.integrity_error", error=str(getattr(exc, "orig", exc)).splitlines()[0])
    return problem_response(request, 409, Conflict.detail, code=Conflict.code)


async def _handle_database_unavailable(request: Request, exc: Exception) -> JSONResponse:
    log.warning("db.unavailable", error_type=type(exc).__name__, error=str(exc).splitlines()[0])
    retry_after = str(request.app.state.settings.RETRY_AFTER_SECONDS)
    return problem_response(
        request,
        503,
        "The database is unavailable or busy; try again shortly.",
        code="database_unavailable",
        headers={"Retry-After": retry_after},
    )


# Errors that mean "the database cannot serve now", not "this request is wrong".
DATABASE_UNAVAILABLE_ERRORS: tuple[type[Exception], ...] = (
    sa_exc.OperationalError,
    sa_exc.InterfaceError,
    sa_exc.TimeoutError,
    ConnectionError,
    TimeoutError,
)


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(AppError, _handle_app_error)
    app.add_exception_handler(StarletteHTTPException, _handle_http_exception)
    app.add_exception_handler(RequestValidationError, _handle_validation_error)
    app.add_exception_handler(sa_exc.IntegrityError, _handle_integrity_error)
    for error_class in DATABASE_UNAVAILABLE_ERRORS:
        app.add_exception_handler(error_class, _handle_database_unavailable)


def problem_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """The `responses=` of a route: each status documented as a problem details body."""
    return {
        status: {
            "description": HTTPStatus(status).phrase,
            "content": {
                PROBLEM_MEDIA_TYPE: {"schema": {"$ref": "#/components/schemas/ProblemDetails"}}
            },
        }
        for status in statuses
    }


def install_problem_openapi(app: FastAPI) -> None:
    """Describe errors as they are sent: problem details, not FastAPI's default 422 body."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        schema = get_openapi(
            title=app.title,
            version=app.version,
            summary=app.summary,
            description=app.description,
            routes=app.routes,
        )
        components = schema.setdefault("components", {}).setdefault("schemas", {})
        definitions = ProblemDetails.model_json_schema(ref_template="#/components/schemas/{model}")
        components.update(definitions.pop("$defs", {}))
        components["ProblemDetails"] = definitions
        components.pop("HTTPValidationError", None)
        components.pop("ValidationError", None)
        problem = problem_responses(422)[422]
        for path_item in schema.get("paths", {}).values():
            for operation in path_item.values():
                responses = operation.get("responses", {})
                if "422" in responses:
                    responses["422"] = {**problem, "description": "Validation Error"}
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]
