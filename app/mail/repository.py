"""Every SQL statement about the outbox, the same on PostgreSQL and SQLite.

Times come from the caller (the dispatcher's clock), so one statement means the same everywhere.
On PostgreSQL, dispatchers claim with FOR UPDATE SKIP LOCKED: each takes rows nobody else is
claiming, without waiting. SQLite ignores it and needs nothing of the kind: a transaction that may
write takes the database's write lock first (BEGIN IMMEDIATE), so claims run one at a time.
"""

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import CursorResult, delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.models import OutboxMessage, OutboxStatus

PENDING, SENT, FAILED = OutboxStatus.PENDING, OutboxStatus.SENT, OutboxStatus.FAILED
_CLAIM_EXPIRED = "ClaimExpired"


async def next_due_at(session: AsyncSession) -> datetime | None:
    """When the earliest pending message is due (its claim, if any, ends); None: none pending."""
    statement = select(func.min(OutboxMessage.next_attempt_at)).where(
        OutboxMessage.status == PENDING
    )
    due: datetime | None = await session.scalar(statement)
    return due


async def fail_abandoned(session: AsyncSession, *, now: datetime, max_attempts: int) -> list[int]:
    """Fail the messages whose last attempt's claim ran out: their dispatcher died sending.

    Without this, a message that kills every process sending it would be tried forever.
    """
    statement = (
        update(OutboxMessage)
        .where(
            OutboxMessage.status == PENDING,
            OutboxMessage.attempts >= max_attempts,
            OutboxMessage.next_attempt_at <= now,
        )
        .values(status=FAILED, claim_token=None, last_error=_CLAIM_EXPIRED)
        .returning(OutboxMessage.id)
    )
    return list(await session.scalars(statement))


async def claim_due(
    session: AsyncSession,
    *,
    now: datetime,
    claimed_until: datetime,
    claim_token: str,
    limit: int,
    max_attempts: int,
) -> list[OutboxMessage]:
    """Claim up to `limit` due messages, the longest due first, until `claimed_until`.

    The claim counts as an attempt, and moves the message's next attempt to the claim's end:
    if the claimant dies, the message is due again then.
    """
    statement = (
        select(OutboxMessage)
        .where(
            OutboxMessage.status == PENDING,
            OutboxMessage.next_attempt_at <= now,
            OutboxMessage.attempts < max_attempts,
        )
        .order_by(OutboxMessage.next_attempt_at, OutboxMessage.id)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    messages = list(await session.scalars(statement))
    for message in messages:
        message.claim_token = claim_token
        message.attempts += 1
        message.next_attempt_at = claimed_until
    await session.flush()
    return messages


async def mark_sent(
    session: AsyncSession, outbox_id: int, *, claim_token: str, now: datetime
) -> bool:
    """Record a delivery; False if the claim was lost (it ran out, another dispatcher took it)."""
    return await _update_claimed(
        session,
        outbox_id,
        claim_token,
        status=SENT,
        sent_at=now,
        claim_token=None,
        last_error=None,
    )


async def mark_retry(
    session: AsyncSession, outbox_id: int, *, claim_token: str, at: datetime, error: str
) -> bool:
    return await _update_claimed(
        session, outbox_id, claim_token, next_attempt_at=at, claim_token=None, last_error=error
    )


async def mark_failed(
    session: AsyncSession, outbox_id: int, *, claim_token: str, error: str
) -> bool:
    return await _update_claimed(
        session, outbox_id, claim_token, status=FAILED, claim_token=None, last_error=error
    )


async def _update_claimed(
    session: AsyncSession, outbox_id: int, token: str, **values: object
) -> bool:
    """Change a message this claim still holds; False if it holds it no more."""
    statement = (
        update(OutboxMessage)
        .where(
            OutboxMessage.id == outbox_id,
            OutboxMessage.claim_token == token,
            OutboxMessage.status == PENDING,
        )
        .values(**values)
        .returning(OutboxMessage.id)
    )
    return (await session.scalar(statement)) is not None


async def has_sent_before(session: AsyncSession, before: datetime) -> bool:
    statement = (
        select(OutboxMessage.id)
        .where(OutboxMessage.status == SENT, OutboxMessage.sent_at < before)
        .limit(1)
    )
    return (await session.scalar(statement)) is not None


async def purge_sent_before(session: AsyncSession, before: datetime) -> int:
    """Delete the messages sent before `before`; how many."""
    statement = delete(OutboxMessage).where(
        OutboxMessage.status == SENT, OutboxMessage.sent_at < before
    )
    result = await session.execute(statement)
    assert isinstance(result, CursorResult)  # what a DELETE gives
    return result.rowcount


async def list_failed(session: AsyncSession, *, limit: int) -> Sequence[OutboxMessage]:
    statement = (
        select(OutboxMessage)
        .where(OutboxMessage.status == FAILED)
        .order_by(OutboxMessage.id)
        .limit(limit)
    )
    return (await session.scalars(statement)).all()


async def retry_failed(session: AsyncSession, *, outbox_id: int | None, now: datetime) -> list[int]:
    """Make failed messages (one, or all when `outbox_id` is None) pending and due now, with all
    their attempts ahead of them; their ids."""
    statement = update(OutboxMessage).where(OutboxMessage.status == FAILED)
    if outbox_id is not None:
        statement = statement.where(OutboxMessage.id == outbox_id)
    statement = statement.values(
        status=PENDING, attempts=0, next_attempt_at=now, claim_token=None
    ).returning(OutboxMessage.id)
    return list(await session.scalars(statement))
