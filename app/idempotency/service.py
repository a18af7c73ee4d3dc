"""The rules of `Idempotency-Key`: the first request with a key is carried out and its answer
kept (IDEMPOTENCY_KEY_TTL_SECONDS); a retry with the same key and request gets that answer and
changes nothing; the same key with another request, or while the first still runs, is a 409.
"""

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any

import structlog
from sqlalchemy.ext.asyncio import AsyncSession

from app.idempotency import repository
from app.idempotency.errors import (
    IdempotencyKeyCreatedGone,
    IdempotencyKeyInFlight,
    IdempotencyKeyMismatch,
)
from app.models import IdempotencyKey

log = structlog.get_logger(__name__)


class CreatedKind(StrEnum):
    """What a guarded request creates; its answer names the new row's id."""

    POST = "post"
    COMMENT = "comment"


# The column that links a kept answer to the row of each kind (emptied when the row goes).
_LINKS = {CreatedKind.POST: "created_post_id", CreatedKind.COMMENT: "created_comment_id"}


@dataclass(frozen=True, slots=True)
class Claim:
    """A key this request may use: its answer is kept once it succeeds."""

    user_id: int
    key: str
    fingerprint: str


@dataclass(frozen=True, slots=True)
class KeptAnswer:
    status_code: int
    content_type: str
    location: str | None
    body: bytes
    # The row the request created, when the route creates one (IdempotentRoute.creates).
    created: tuple[CreatedKind, int] | None = None


async def claim(
    session: AsyncSession, *, user_id: int, key: str, fingerprint: str
) -> Claim | KeptAnswer:
    """The claim of a new key, or the answer kept for an earlier request with it; a 409 when
    the key is in use, was used for another request, or created a row that is gone."""
    if not await repository.try_lock(session, user_id=user_id, key=key):
        raise IdempotencyKeyInFlight
    await repository.delete_expired(session, user_id=user_id, now=datetime.now(UTC))
    kept = await repository.get(session, user_id=user_id, key=key)
    if kept is None:
        return Claim(user_id=user_id, key=key, fingerprint=fingerprint)
    if kept.fingerprint != fingerprint:
        raise IdempotencyKeyMismatch
    if (
        kept.created_kind is not None
        and getattr(kept, _LINKS[CreatedKind(kept.created_kind)]) is None
    ):
        raise IdempotencyKeyCreatedGone
    log.info("idempotency.replayed", user_id=user_id, status=kept.status_code)
    return KeptAnswer(
        status_code=kept.status_code,
        content_type=kept.content_type,
        location=kept.location,
        body=kept.body,
    )


async def keep(
    session: AsyncSession, claim: Claim, answer: KeptAnswer, *, ttl_seconds: int
) -> None:
    """Keep the answer with the key, in the transaction of the write it answers."""
    now = datetime.now(UTC)
    session.add(
        IdempotencyKey(
            user_id=claim.user_id,
            key=claim.key,
            fingerprint=claim.fingerprint,
            status_code=answer.status_code,
            content_type=answer.content_type,
            location=answer.location,
            body=answer.body,
            created_at=now,
            expires_at=now + timedelta(seconds=ttl_seconds),
            **_link_to_created(answer),
        )
    )
    await session.flush()


def _link_to_created(answer: KeptAnswer) -> dict[str, Any]:
    if answer.created is None:
        return {}
    kind, row_id = answer.created
    return {"created_kind": kind, _LINKS[kind]: row_id}
