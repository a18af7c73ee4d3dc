"""Work that must follow a commit: queued on a session, run only once its unit of work committed.

Never invalidate a cache, publish or send from inside a transaction: a reader could refill the
cache with the old row, and a request that rolls back would already have told the world.
"""

import inspect
from collections.abc import Awaitable, Callable
from functools import partial

import structlog
from sqlalchemy.ext.asyncio import AsyncSession

log = structlog.get_logger(__name__)

AfterCommit = Callable[[], Awaitable[None] | None]
_QUEUE = "quill.after_commit"


def on_commit(session: AsyncSession, callback: AfterCommit) -> None:
    """Run `callback` once the unit of work of `session` has committed, in the order queued.

    Never after a rollback or a failed commit. A callback that fails is logged (with the request
    id) and does not fail the unit of work: its changes are committed by then. Work queued inside
    a savepoint that is later rolled back still runs: queue it outside savepoints.
    """
    session.info.setdefault(_QUEUE, []).append(callback)


def has_queued(session: AsyncSession) -> bool:
    return bool(session.info.get(_QUEUE))


def discard_queued(session: AsyncSession) -> None:
    session.info.pop(_QUEUE, None)


async def run_queued(session: AsyncSession) -> None:
    for callback in session.info.pop(_QUEUE, []):
        try:
            result = callback()
            if inspect.isawaitable(result):
                await result
        except Exception:
            log.exception("db.after_commit_failed", callback=_name_of(callback))


def _name_of(callback: AfterCommit) -> str:
    # An event's listener is queued as partial(listener, event): name both.
    if isinstance(callback, partial):
        return (
            f"{_name_of(callback.func)}({', '.join(type(arg).__name__ for arg in callback.args)})"
        )
    return getattr(callback, "__qualname__", repr(callback))
