"""The security event log: the events a security reviewer asks about, one line each, under the
logger `quill.security` and named `security.<kind>`.

Each line names the user it concerns, the client address and the request id of the request that
caused it (bound to the request's context by RequestContextMiddleware), so that one query finds
what happened to an account, from where, and the request's own log lines.
"""

from enum import StrEnum
from functools import partial

import structlog
from sqlalchemy.ext.asyncio import AsyncSession
from structlog.typing import EventDict

from app.core.after_commit import on_commit

log = structlog.get_logger("quill.security")


class SecurityEvent(StrEnum):
    # A spent refresh token came back: someone holds a copy; its login was ended.
    REFRESH_TOKEN_REUSED = "refresh_token_reused"
    # An account's failed sign-ins reached RATE_LIMIT_LOGIN_ACCOUNT: sign-ins wait.
    SIGN_IN_LOCKED = "sign_in_locked"
    PASSWORD_CHANGED = "password_changed"
    PASSWORD_RESET = "password_reset"
    # An administrator promoted or demoted an account, or (de)activated it.
    ROLE_CHANGED = "role_changed"
    ACCOUNT_DEACTIVATED = "account_deactivated"
    ACCOUNT_ACTIVATED = "account_activated"


def record(event: SecurityEvent, *, user_id: int | None, **details: object) -> None:
    """Log `event` for `user_id` now, with the request's client address and id if there is one.
    For what happened outside any transaction (a sign-in limit reached)."""
    log.warning(f"security.{event.value}", **_fields(event, user_id, details))


def record_on_commit(
    session: AsyncSession, event: SecurityEvent, *, user_id: int, **details: object
) -> None:
    """Log `event` once the change it reports has committed: a change rolled back never
    happened, and must not be logged as if it had."""
    fields = _fields(event, user_id, details)  # the request's context, read while in it
    on_commit(session, partial(log.warning, f"security.{event.value}", **fields))


def _fields(event: SecurityEvent, user_id: int | None, details: dict[str, object]) -> EventDict:
    context = structlog.contextvars.get_contextvars()
    return {
        "security_event": event.value,
        "user_id": user_id,
        "client_address": context.get("client_address"),
        "request_id": context.get("request_id"),
        **details,
    }
