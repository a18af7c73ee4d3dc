"""Every failure, whatever raised it, becomes an AppError rendered by the surface of its path.

Framework errors (no such route, wrong method, a body that does not parse or validate), database
errors (unavailable, or a bug) and AppErrors all end in `error_response`, which the middleware's
last-resort 500 uses as well: no error body is built anywhere else.
"""

import traceback
from collections.abc import Mapping
from http import HTTPStatus
from typing import Any

import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import JSONResponse, Response
from starlette.routing import Match, Mount

from app.core.db_errors import (
    DATABASE_ERRORS,
    describe_database_error,
    is_unavailable,
)
from app.core.errors import (
    AppError,
    DatabaseUnavailable,
    HTTPError,
    InternalError,
    InvalidField,
    NotAuthenticated,
    RequestInvalid,
)
from app.core.surfaces import Surfaces

log = structlog.get_logger(__name__)

_CODES_BY_STATUS: dict[int, str] = {
    401: "not_authenticated",
    403: "permission_denied",
    405: "method_not_allowed",
    413: "payload_too_large",
    415: "unsupported_media_type",
}
HTTP_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")


def code_for_status(status: int) -> str:
    if status in _CODES_BY_STATUS:
        return _CODES_BY_STATUS[status]
    return HTTPStatus(status).phrase.lower().replace(" ", "_").replace("-", "_")


def request_id_of(scope_state: Mapping[str, Any] | None) -> str | None:
    request_id = (scope_state or {}).get("request_id")
    return request_id if isinstance(request_id, str) else None


def error_response(
    surfaces: Surfaces, path: str, error: AppError, request_id: str | None
) -> Response:
    surface = surfaces.for_path(path)
    headers = dict(error.headers)
    if isinstance(error, NotAuthenticated):
        headers.setdefault("WWW-Authenticate", surface.authorization_scheme)
    return JSONResponse(
        surface.renderer.body(error, request_id),
        status_code=error.status_code,
        headers=headers,
        media_type=surface.renderer.media_type,
    )


def as_app_error(request: Request, exc: Exception, *, retry_after_seconds: int) -> AppError:
    """The AppError that `exc` amounts to; a bug (anything unforeseen) is an InternalError."""
    if isinstance(exc, AppError):
        return exc
    if isinstance(exc, RequestValidationError):
        return _invalid_request(exc)
    if isinstance(exc, StarletteHTTPException):
        return _http_error(request, exc)
    if isinstance(exc, DATABASE_ERRORS) and is_unavailable(exc):
        log.warning("db.unavailable", **describe_database_error(exc))
        return DatabaseUnavailable(retry_after_seconds=retry_after_seconds)
    if isinstance(exc, DATABASE_ERRORS):
        # The driver's message may quote the row (PostgreSQL's "Failing row contains ..."), so
        # only its kind, its constraint and the stack are logged.
        log.error(
            "db.error",
            **describe_database_error(exc),
            stack="".join(traceback.format_tb(exc.__traceback__)),
        )
    return InternalError()


def _invalid_request(exc: RequestValidationError) -> RequestInvalid:
    errors = exc.errors()
    # Only loc, msg and type: `input` holds the submitted value (a password, say) and `ctx`
    # may hold exception objects.
    problems = [
        InvalidField(loc=tuple(error["loc"]), msg=str(error["msg"]), type=str(error["type"]))
        for error in errors[: RequestInvalid.MAX_REPORTED]
    ]
    return RequestInvalid(problems, total=len(errors))


def _http_error(request: Request, exc: StarletteHTTPException) -> AppError:
    if exc.status_code == 400:
        # Quill raises AppErrors, so a 400 HTTPException is the framework failing to parse a
        # body (broken multipart, bytes that are not text). A body that does not parse is
        # answered like one that does not validate: one status, documented on every operation.
        unparseable = InvalidField(("body",), "The body could not be parsed.", "body_unparseable")
        return RequestInvalid([unparseable])
    detail = exc.detail if isinstance(exc.detail, str) else HTTPStatus(exc.status_code).phrase
    headers = dict(exc.headers or {})
    if exc.status_code == 405 and (allowed := allowed_methods(request)):
        headers["Allow"] = ", ".join(allowed)
    return HTTPError(exc.status_code, code_for_status(exc.status_code), detail, headers)


def allowed_methods(request: Request) -> list[str]:
    """Every method some route serves at the request's path (mounted apps answer for themselves).

    The router's own 405 names only the methods of the first route matching the path, but a path
    such as /posts/{post_id} has one route per method.
    """
    routes = [route for route in request.app.router.routes if not isinstance(route, Mount)]
    root_path = request.scope.get("app_root_path", request.scope.get("root_path", ""))
    allowed: list[str] = []
    for method in HTTP_METHODS:
        probe = {
            "type": "http",
            "method": method,
            "path": request.scope["path"],
            "root_path": root_path,
            "headers": [],
        }
        # OPTIONS is answered for every path some route serves (see `answer_options`).
        served = any(route.matches(dict(probe))[0] is Match.FULL for route in routes)
        if served or (method == "OPTIONS" and allowed):
            allowed.append(method)
    return allowed


def answer_options(request: Request) -> Response | None:
    """An OPTIONS request (not a CORS preflight, which the CORS middleware answers) to a path
    that exists: 204 with the methods it serves in Allow. None for a path nothing serves."""
    allowed = allowed_methods(request)
    if not allowed:
        return None
    return Response(status_code=204, headers={"Allow": ", ".join(allowed)})


def install_error_handlers(app: FastAPI, surfaces: Surfaces, *, retry_after_seconds: int) -> None:
    async def handle(request: Request, exc: Exception) -> Response:
        # No route has OPTIONS: the router's 405 for it is where the path's methods are known.
        if (
            request.method == "OPTIONS"
            and isinstance(exc, StarletteHTTPException)
            and exc.status_code == 405
            and (options := answer_options(request)) is not None
        ):
            return options
        error = as_app_error(request, exc, retry_after_seconds=retry_after_seconds)
        request_id = request_id_of(request.scope.get("state"))
        return error_response(surfaces, request.url.path, error, request_id)

    for error_class in (
        AppError,
        StarletteHTTPException,
        RequestValidationError,
        *DATABASE_ERRORS,
    ):
        app.add_exception_handler(error_class, handle)
