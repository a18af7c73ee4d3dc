"""How the Conduit surface (/api) speaks: its errors, and the tokens it reads.

RealWorld clients read every error as `{"errors": {"<key>": ["<message>", ...]}}` and show each
message after its key, Rails-style: "email has already been taken", "token is missing",
"article not found". The key is the field the error is about (AppError.field, or the field
that failed validation), else the thing the error concerns; the message is the one the
RealWorld suite expects for the errors it knows, and the error's own detail for the others.
"""

import re
from collections.abc import Mapping
from http import HTTPStatus
from typing import Any

from app.core.errors import AppError, RequestInvalid
from app.core.paths import CONDUIT_PREFIX
from app.core.surfaces import OpenAPIResponses, Surface

ERRORS_SCHEMA_NAME = "GenericErrorModel"
ERRORS_SCHEMA_REF = f"#/components/schemas/{ERRORS_SCHEMA_NAME}"
ERRORS_MEDIA_TYPE = "application/json"
BLANK = "can't be blank"

# Quill's stable error codes as Conduit words them: the key (when the error names no field of
# its own) and the message.
_WORDING: dict[str, tuple[str, str]] = {
    "not_authenticated": ("token", "is missing"),
    "invalid_token": ("token", "is invalid"),
    "invalid_credentials": ("credentials", "invalid"),
    "username_taken": ("username", "has already been taken"),
    "email_taken": ("email", "has already been taken"),
    "user_not_found": ("profile", "not found"),
    "post_not_found": ("article", "not found"),
    "not_post_author": ("article", "forbidden"),
    "comment_not_found": ("comment", "not found"),
    "not_comment_author": ("comment", "forbidden"),
    "cannot_follow_yourself": ("profile", "cannot be followed by itself"),
    "not_found": ("resource", "not found"),
    "permission_denied": ("resource", "forbidden"),
    "method_not_allowed": ("method", "is not allowed"),
    "unsupported_media_type": ("body", "must be JSON"),
    "rate_limited": ("rate_limit", "is exceeded; retry after the seconds in Retry-After"),
    "rate_limit_unavailable": ("rate_limit", "cannot be checked now; retry shortly"),
    "database_unavailable": ("server", "is unavailable now; retry shortly"),
    "internal_error": ("server", "had an unexpected error"),
}
# Quill's names of the fields Conduit names otherwise.
_FIELD_NAMES = {"content": "body", "tags": "tagList"}
# The key of an error of another code, by status.
_KEY_BY_STATUS = {401: "token", 403: "resource", 404: "resource", 409: "resource", 413: "body"}
# Validation messages in Conduit's words, by pydantic's error type.
_VALIDATION_WORDING = {
    "missing": BLANK,
    "json_invalid": "is not valid JSON",
    "body_unparseable": "could not be parsed",
}
# pydantic's messages name the kind of value first ("String should have at most 200
# characters"); after a field's name, the rest reads as Conduit's do ("title should have ...").
_VALUE_KIND = re.compile(r"^(?:Value error, |(?:Input|String|List|Value) (?=should))")


class ConduitErrorRenderer:
    media_type = ERRORS_MEDIA_TYPE

    def body(self, error: AppError, request_id: str | None) -> dict[str, Any]:
        # Conduit's body has no place for the request id: X-Request-ID carries it.
        if isinstance(error, RequestInvalid):
            return {"errors": _validation_errors(error)}
        return {"errors": {_key(error): [_message(error)]}}

    def openapi_components(self) -> Mapping[str, Any]:
        return {
            ERRORS_SCHEMA_NAME: {
                "title": ERRORS_SCHEMA_NAME,
                "description": (
                    "Every error of the Conduit API (/api): messages by the field, or the "
                    "thing, they are about."
                ),
                "type": "object",
                "required": ["errors"],
                "properties": {
                    "errors": {
                        "type": "object",
                        "additionalProperties": {"type": "array", "items": {"type": "string"}},
                    }
                },
                "examples": [{"errors": {"title": [BLANK]}}],
            }
        }

    def openapi_responses(self, *statuses: int) -> OpenAPIResponses:
        return conduit_responses(*statuses)


def conduit_responses(*statuses: int) -> OpenAPIResponses:
    """The `responses=` of a Conduit route: each status documented in Conduit's error format."""
    return {
        status: {
            "description": HTTPStatus(status).phrase,
            "content": {ERRORS_MEDIA_TYPE: {"schema": {"$ref": ERRORS_SCHEMA_REF}}},
        }
        for status in statuses
    }


def _key(error: AppError) -> str:
    if error.field:
        return _FIELD_NAMES.get(error.field, error.field)
    if error.code in _WORDING:
        return _WORDING[error.code][0]
    if error.status_code >= 500:
        return "server"
    return _KEY_BY_STATUS.get(error.status_code, "request")


def _message(error: AppError) -> str:
    if error.code == "payload_too_large" and "max_body_bytes" in error.extra:
        return f"is larger than {error.extra['max_body_bytes']} bytes"
    if error.code in _WORDING:
        return _WORDING[error.code][1]
    return error.detail


def _validation_errors(error: RequestInvalid) -> dict[str, list[str]]:
    errors: dict[str, list[str]] = {}
    for problem in error.problems:
        # The innermost name: `title` of ("body", "article", "title"), `tagList` of an item of
        # it, `limit` of ("query", "limit"), `body` of a body that is not JSON at all.
        key = next((part for part in reversed(problem.loc) if isinstance(part, str)), "body")
        message = _VALIDATION_WORDING.get(problem.type) or _VALUE_KIND.sub("", problem.msg)
        if message[1:2].islower():  # "Extra inputs ..." but not "JSON ..."
            message = message[:1].lower() + message[1:]
        if message not in errors.setdefault(key, []):
            errors[key].append(message)
    return errors


# Conduit's clients send `Authorization: Token <jwt>`; `Bearer` is taken too, as /api/v1's.
CONDUIT_SURFACE = Surface(
    prefix=CONDUIT_PREFIX,
    renderer=ConduitErrorRenderer(),
    authorization_schemes=("Token", "Bearer"),
)
