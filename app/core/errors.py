"""The one error family: every failure a client can act on is an AppError.

An error says what went wrong (status, stable code, detail) and may carry headers (a computed
`Retry-After`), the field it concerns and extra members. How it looks on the wire is the business
of the API surface the request came through (app/core/surfaces.py), never of the error.
"""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar


class AppError(Exception):
    """A failure the client can act on. Subclasses set the status, a stable code and a detail."""

    status_code: int = 400
    code: str = "bad_request"
    default_detail: ClassVar[str] = "The request cannot be processed."
    default_headers: ClassVar[Mapping[str, str]] = {}
    default_field: ClassVar[str | None] = None
    # The request's changes are committed although the request fails (see Database.transaction).
    keeps_changes: ClassVar[bool] = False

    def __init__(
        self,
        detail: str | None = None,
        *,
        field: str | None = None,
        headers: Mapping[str, str] | None = None,
        extra: Mapping[str, Any] | None = None,
    ) -> None:
        self.detail = detail or self.default_detail
        # The input field the error is about, for surfaces that key errors by field.
        self.field = field or self.default_field
        self.headers: dict[str, str] = {**self.default_headers, **(headers or {})}
        # Further members of the error body, such as a limit that was exceeded.
        self.extra: dict[str, Any] = dict(extra or {})
        super().__init__(self.detail)


class HTTPError(AppError):
    """An HTTP-level failure raised by the framework (no such route, method not allowed)."""

    def __init__(
        self, status_code: int, code: str, detail: str, headers: Mapping[str, str] | None = None
    ) -> None:
        super().__init__(detail, headers=headers)
        self.status_code = status_code
        self.code = code


class NotAuthenticated(AppError):
    status_code = 401
    code = "not_authenticated"
    default_detail = "Authentication is required, or the credentials given are not valid."


class PermissionDenied(AppError):
    status_code = 403
    code = "permission_denied"
    default_detail = "You are not allowed to do this."


class NotFound(AppError):
    status_code = 404
    code = "not_found"
    default_detail = "The resource does not exist."


class Conflict(AppError):
    status_code = 409
    code = "conflict"
    default_detail = "The request conflicts with the current state of the resource."


class PreconditionFailed(AppError):
    """`If-Match` named no current version of the resource: nothing was changed."""

    status_code = 412
    code = "precondition_failed"
    default_detail = "The resource changed since the ETag sent in If-Match; read it again."


@dataclass(frozen=True, slots=True)
class InvalidField:
    """One reason the request is invalid: where (`loc`), why (`msg`), and its kind (`type`)."""

    loc: tuple[str | int, ...]
    msg: str
    type: str


class RequestInvalid(AppError):
    """The request failed validation. Only the first few problems are kept: an anonymous body of
    100,000 unknown fields must not cost a 9 MB answer."""

    status_code = 422
    code = "validation_failed"
    default_detail = "The request is not valid; see errors."
    MAX_REPORTED: ClassVar[int] = 20

    def __init__(self, problems: Sequence[InvalidField], *, total: int | None = None) -> None:
        total = len(problems) if total is None else total
        shown = list(problems[: self.MAX_REPORTED])
        detail = self.default_detail
        if total > len(shown):
            detail = f"The request is not valid: {total} problems, the first {len(shown)} listed."
        super().__init__(detail)
        self.problems = shown
        self.total = total


class PayloadTooLarge(AppError):
    """The request body is larger than MAX_REQUEST_BODY_BYTES (said as sent, or as counted)."""

    status_code = 413
    # The code of every 413, whichever layer answers it (error_handlers.code_for_status).
    code = "payload_too_large"
    default_detail = "The request body is too large."

    def __init__(self, *, max_body_bytes: int) -> None:
        super().__init__(
            f"The request body is larger than {max_body_bytes} bytes.",
            extra={"max_body_bytes": max_body_bytes},
        )


class PasswordTooCommon(AppError):
    """A new password on the list of common ones (only with PASSWORD_REJECT_COMMON)."""

    status_code = 422
    code = "password_too_common"
    default_detail = "This password is one of the most common ones: choose another."


class HostNotAllowed(AppError):
    """The Host header names a host this service does not answer to (ALLOWED_HOSTS)."""

    status_code = 400
    code = "host_not_allowed"
    # Never the host that was sent: an answer must not echo it.
    default_detail = "This service does not answer to the host named in the request."


class CrossOriginRefused(AppError):
    """A CORS preflight that asks for an origin, a method or a header that is not allowed."""

    status_code = 400
    code = "cross_origin_refused"
    default_detail = "This cross-origin request is not allowed."


class DatabaseUnavailable(AppError):
    status_code = 503
    code = "database_unavailable"
    default_detail = "The database is unavailable or busy; try again shortly."

    def __init__(self, *, retry_after_seconds: int) -> None:
        super().__init__(headers={"Retry-After": str(retry_after_seconds)})


class RateLimited(AppError):
    """Over a rate limit: nothing was done, and the same request succeeds after Retry-After."""

    status_code = 429
    code = "rate_limited"
    default_detail = "Too many requests; try again after the number of seconds in Retry-After."

    def __init__(self, *, retry_after_seconds: int, headers: Mapping[str, str]) -> None:
        super().__init__(headers={**headers, "Retry-After": str(retry_after_seconds)})


class RateLimitUnavailable(AppError):
    """A shared limit (sign-in, sign-up) cannot be consulted: refused rather than unlimited, so
    an outage of its store never lets password guessing through."""

    status_code = 503
    code = "rate_limit_unavailable"
    default_detail = "The rate limit of this request cannot be checked now; try again shortly."

    def __init__(self, *, retry_after_seconds: int) -> None:
        super().__init__(headers={"Retry-After": str(retry_after_seconds)})


class InternalError(AppError):
    """A bug. Its detail never says more than this: the log, under the request id, says the rest."""

    status_code = 500
    code = "internal_error"
    default_detail = "An unexpected error occurred."


class NotReady(AppError):
    """A dependency the service needs does not answer; `failed` names each one."""

    status_code = 503
    code = "not_ready"
    default_detail = "The service cannot serve requests now: a component it needs does not answer."

    def __init__(self, failed: Sequence[str]) -> None:
        super().__init__(f"Not answering: {', '.join(failed)}.", extra={"failed": list(failed)})
        self.failed = list(failed)
