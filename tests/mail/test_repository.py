"""The outbox's SQL where the dispatcher's tests cannot see it: concurrent claims, lost claims."""

import asyncio
from datetime import UTC, datetime, timedelta

from app.core.config import Settings
from app.core.db import Database
from app.mail import repository
from app.models import OutboxStatus
from tests.mail.conftest import outbox_row, queue_committed

CLAIM = timedelta(seconds=30)


async def claim(database: Database, token: str, *, limit: int = 5) -> list[int]:
    now = datetime.now(UTC)
    async with database.transaction() as session:
        claimed = await repository.claim_due(
            session,
            now=now,
            claimed_until=now + CLAIM,
            claim_token=token,
            limit=limit,
            max_attempts=10,
        )
        return [message.id for message in claimed]


async def test_a_claim_on_postgresql_skips_the_rows_another_is_claiming_without_waiting(
    postgresql_only: None, settings: Settings
) -> None:
    database = Database(settings)
    try:
        queued = [(await queue_committed(database, settings)).id for _ in range(10)]
        now = datetime.now(UTC)
        async with database.transaction() as first:
            # The first claim holds its rows, uncommitted, while the second one runs.
            held = await repository.claim_due(
                first,
                now=now,
                claimed_until=now + CLAIM,
                claim_token="first",
                limit=5,
                max_attempts=10,
            )
            # A claim that waited for the first's row locks would never end here.
            taken = await asyncio.wait_for(claim(database, "second"), timeout=10)
    finally:
        await database.dispose()

    assert [message.id for message in held] == queued[:5]
    assert taken == queued[5:]


async def test_a_second_claim_finds_nothing_the_first_has_claimed(settings: Settings) -> None:
    database = Database(settings)
    try:
        queued = [(await queue_committed(database, settings)).id for _ in range(3)]
        first = await claim(database, "first")
        second = await claim(database, "second")
    finally:
        await database.dispose()

    assert (first, second) == (queued, [])


async def test_a_result_recorded_under_a_lost_claim_changes_nothing(settings: Settings) -> None:
    database = Database(settings)
    try:
        message = await queue_committed(database, settings)
        await claim(database, "expired-and-taken-over")
        async with database.transaction() as session:
            recorded = await repository.mark_sent(
                session, message.id, claim_token="the-first-claim", now=datetime.now(UTC)
            )
        row = await outbox_row(database, message.id)
    finally:
        await database.dispose()

    assert recorded is False
    assert (row.status, row.claim_token) == (OutboxStatus.PENDING, "expired-and-taken-over")
