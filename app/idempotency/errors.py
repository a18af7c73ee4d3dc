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
