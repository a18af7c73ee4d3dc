from collections.abc import Mapping
from typing import ClassVar

from app.core.errors import Conflict


class IdempotencyKeyMismatch(Conflict):
    """The key was used for another request: a client's mistake, never a retry."""

    code = "idempotency_key_mismatch"
    default_detail = (
        "This Idempotency-Key was sent with another request; use a new key for a new request."
    )


class IdempotencyKeyInFlight(Conflict):
    """The first request with this key has not finished: its answer is not known yet."""

    code = "idempotency_key_in_flight"
    default_detail = (
        "A request with this Idempotency-Key is still being processed; retry after Retry-After."
    )
    default_headers: ClassVar[Mapping[str, str]] = {"Retry-After": "1"}


class IdempotencyKeyCreatedGone(Conflict):
    """The first request with this key created a post or comment that has since been deleted:
    replaying its 201 would describe something that no longer exists, and creating it again
    would undo the deletion."""

    code = "idempotency_key_created_gone"
    default_detail = (
        "The request with this Idempotency-Key was carried out, and what it created has since "
        "been deleted."
    )
