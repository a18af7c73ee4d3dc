import hashlib
from datetime import datetime

from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.models import IdempotencyKey


def _lock_id(user_id: int, key: str) -> int:
    """A signed 64-bit number for (user, key), as PostgreSQL's advisory locks take."""
    digest = hashlib.sha256(f"idempotency:{user_id}:{key}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


async def try_lock(session: AsyncSession, *, user_id: int, key: str) -> bool:
    """Hold (user, key) until the transaction ends; False if another transaction holds it.

    PostgreSQL only: there, two requests with one key would otherwise both run, and the unique
    constraint would stop the second only at its commit. SQLite runs one writer at a time, so
    the second starts once the first has committed, and finds its answer.
    """
    if session.get_bind().dialect.name != "postgresql":
        return True
    locked = await session.scalar(select(func.pg_try_advisory_xact_lock(_lock_id(user_id, key))))
    return bool(locked)


async def get(session: AsyncSession, *, user_id: int, key: str) -> IdempotencyKey | None:
    statement = select(IdempotencyKey).where(
        IdempotencyKey.user_id == user_id, IdempotencyKey.key == key
    )
    return await session.scalar(statement)


async def delete_expired(session: AsyncSession, *, user_id: int, now: datetime) -> None:
    """The user's keys past their time: each claim tidies up after its own user."""
    await session.execute(
        delete(IdempotencyKey).where(
            IdempotencyKey.user_id == user_id, IdempotencyKey.expires_at <= now
        )
    )
