"""The engine, the per-request session, and what SQLite needs to behave like a real database."""

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Annotated, Any

import aiosqlite
from fastapi import Depends, Request
from sqlalchemy import event
from sqlalchemy.engine import Connection, Dialect, make_url
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from app.core.config import Settings
from app.core.errors import AppError

# Requests that only read take a deferred SQLite transaction, so they never wait for a writer.
READ_ONLY_OPTION = "quill_read_only"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


class Database:
    """One engine per process, and two session factories over it: read-write and read-only."""

    def __init__(self, settings: Settings) -> None:
        self.engine = create_engine(settings)
        self.session_factory = async_sessionmaker(self.engine, expire_on_commit=False)
        self.read_only_session_factory = async_sessionmaker(
            self.engine.execution_options(**{READ_ONLY_OPTION: True}), expire_on_commit=False
        )

    async def dispose(self) -> None:
        await self.engine.dispose()


class DatabaseUnreachable(ConnectionError):
    """No new connection to the database could be opened: it is down, unreachable or refusing."""


def create_engine(settings: Settings) -> AsyncEngine:
    url = settings.database_url
    if settings.is_sqlite:
        ensure_sqlite_directory(url)
        engine = create_async_engine(
            url, echo=settings.DB_ECHO, connect_args={"async_creator_fn": _connect_aiosqlite}
        )
        _make_sqlite_transactional(engine, busy_timeout_ms=settings.SQLITE_BUSY_TIMEOUT_MS)
    else:
        engine = create_async_engine(
            url,
            echo=settings.DB_ECHO,
            pool_size=settings.DB_POOL_SIZE,
            max_overflow=settings.DB_MAX_OVERFLOW,
            pool_timeout=settings.DB_POOL_TIMEOUT_SECONDS,
            pool_pre_ping=True,
        )
    _report_failed_connections(engine)
    return engine


def _report_failed_connections(engine: AsyncEngine) -> None:
    """Turn any failure to connect into DatabaseUnreachable, which the API answers with 503.

    Drivers report it in many ways: an unresolvable or unreachable host is a bare OSError, and a
    server that is starting, stopping or full answers with an error SQLAlchemy passes on as a
    generic DBAPIError; left alone, those would be 500s. A wrong setting still stops start-up,
    which connects first, with the driver's error chained.
    """

    @event.listens_for(engine.sync_engine, "do_connect")
    def _connect(dialect: Dialect, _record: Any, cargs: Any, cparams: Any) -> Any:
        try:
            return dialect.connect(*cargs, **cparams)
        except Exception as exc:
            raise DatabaseUnreachable(f"cannot connect to the database: {exc}") from exc


async def _connect_aiosqlite(*args: Any, **kwargs: Any) -> aiosqlite.Connection:
    """aiosqlite.connect, which on failure returns only once its worker thread has stopped.

    aiosqlite 0.22 merely queues that stop: when the event loop closes first (asyncio.run in the
    CLI), the thread dies with "RuntimeError: Event loop is closed" and prints a traceback.
    """
    connection = aiosqlite.connect(*args, **kwargs)
    connection._thread.daemon = True  # as SQLAlchemy does: a leaked connection must not block exit
    try:
        return await connection
    except Exception:
        await asyncio.to_thread(connection._thread.join)
        raise


def _make_sqlite_transactional(engine: AsyncEngine, *, busy_timeout_ms: int) -> None:
    """Take transactions away from the sqlite3 module and issue BEGIN ourselves.

    Python 3.11's sqlite3 begins transactions lazily and on its own terms, which breaks SAVEPOINT
    and lets a read-then-write transaction fail at once with "database is locked" in WAL mode.
    Writers begin IMMEDIATE (they queue on busy_timeout instead); readers begin DEFERRED.
    """

    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute(f"PRAGMA busy_timeout={int(busy_timeout_ms)}")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(connection: Connection) -> None:
        read_only = connection.get_execution_options().get(READ_ONLY_OPTION, False)
        connection.exec_driver_sql("BEGIN DEFERRED" if read_only else "BEGIN IMMEDIATE")


def get_database(request: Request) -> Database:
    database: Database = request.app.state.database
    return database


async def get_session(request: Request) -> AsyncIterator[AsyncSession]:
    """One transaction per request: committed when the route succeeds, rolled back otherwise.

    An AppError that says `keeps_changes` (such as refresh-token theft, which revokes a login
    and still answers 401) has its changes committed before it propagates.
    """
    database = get_database(request)
    if request.method in SAFE_METHODS:
        factory = database.read_only_session_factory
    else:
        factory = database.session_factory
    async with factory() as session:
        try:
            yield session
        except AppError as exc:
            if exc.keeps_changes:
                await session.commit()
            else:
                await session.rollback()
            raise
        except BaseException:
            await session.rollback()
            raise
        else:
            await session.commit()


# scope="function": the session commits before the response is sent, so a failed commit
# reaches the client as an error, never as a success.
SessionDep = Annotated[AsyncSession, Depends(get_session, scope="function")]


def ensure_sqlite_directory(url: str) -> None:
    """Create the folder of a SQLite file, so a fresh checkout needs no set-up step."""
    sa_url = make_url(url)
    if sa_url.get_backend_name() == "sqlite" and sa_url.database not in (None, "", ":memory:"):
        Path(sa_url.database).parent.mkdir(parents=True, exist_ok=True)
