"""The engine, the unit of work, and what SQLite needs to behave like a real database.

`Database.transaction()` is the one unit of work: the request dependency and the CLI (and the mail
worker to come) commit, roll back and run after-commit hooks through it, the same way.
"""

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Annotated, Any

import aiosqlite
from fastapi import Depends, Request
from sqlalchemy import Constraint, Executable, event
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import Connection, Dialect, Result, make_url
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.orm import ORMExecuteState, Session

from app.core.after_commit import discard_queued, has_queued, run_queued
from app.core.config import Settings
from app.core.db_errors import ConstraintErrors, DatabaseUnreachable, violated_constraint
from app.core.errors import AppError
from app.core.events import EventBus

# Requests that only read: READ ONLY on PostgreSQL; on SQLite a deferred transaction, so they never
# wait for a writer, with query_only set, so a read that writes fails there too.
READ_ONLY_OPTION = "quill_read_only"
# How a SQLite transaction that may write begins: IMMEDIATE (the default) takes the write lock up
# front, so a writer queues on busy_timeout instead of failing when it upgrades from a read.
SQLITE_BEGIN_OPTION = "quill_sqlite_begin"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})

_WROTE = "quill.wrote"
_IDLE_SINCE = "quill.idle_since"
_READ_ONLY = "quill.read_only"


class _Session(Session):
    """A session that knows whether its transaction has written (see outside_transaction), and
    refuses to write in a read-only unit of work, on either database: PostgreSQL reads run in
    autocommit, where nothing else would stop a write."""


class ReadOnlyViolation(RuntimeError):
    """Code that only reads (a GET) tried to write: a bug, answered with a 500."""


@event.listens_for(_Session, "after_flush")
def _flushed(session: Session, _context: Any) -> None:
    session.info[_WROTE] = True


@event.listens_for(_Session, "before_flush")
def _flushing(session: Session, _context: Any, _instances: Any) -> None:
    if session.info.get(_READ_ONLY):
        raise ReadOnlyViolation("a read-only unit of work tried to write")


@event.listens_for(_Session, "do_orm_execute")
def _executed(state: ORMExecuteState) -> None:
    if state.is_insert or state.is_update or state.is_delete:
        if state.session.info.get(_READ_ONLY):
            raise ReadOnlyViolation("a read-only unit of work tried to write")
        state.session.info[_WROTE] = True


@event.listens_for(_Session, "after_transaction_end")
def _transaction_ended(session: Session, transaction: Any) -> None:
    if transaction.parent is None:
        session.info.pop(_WROTE, None)


@asynccontextmanager
async def outside_transaction(session: AsyncSession) -> AsyncIterator[None]:
    """Do slow work that needs no database (password hashing) with no transaction open.

    A transaction held across it would hold a pooled connection, and on SQLite the write lock,
    for tens of milliseconds per request. Only a unit of work that has not written yet may do
    this: its transaction, which has only read, ends (what it loaded stays loaded), and the next
    statement begins a new one. Its row locks end too: afterwards, read again (locked) whatever
    the writes rely on, and check that it has not changed meanwhile.
    """
    if session.new or session.dirty or session.deleted or session.info.get(_WROTE):
        raise RuntimeError("outside_transaction() after the unit of work has changed something")
    if has_queued(session):
        raise RuntimeError("outside_transaction() with after-commit work queued")
    if session.in_transaction():
        await session.commit()
    yield


async def execute_unless_taken(
    session: AsyncSession, statement: Executable, constraint: Constraint
) -> Result[Any] | None:
    """Run a write in a SAVEPOINT: its result, or None, with nothing written, when it breaks
    `constraint` (a unique constraint or primary key): another row, perhaps a concurrent
    writer's, holds the key.

    The rest of the unit of work goes on either way. On PostgreSQL a write that clashes with an
    uncommitted one waits for it, then fails here once it commits, or succeeds if it rolls back.
    """
    try:
        async with session.begin_nested():
            return await session.execute(statement)
    except sa_exc.IntegrityError as exc:
        if violated_constraint(exc, constraint.table.metadata) != constraint.name:
            raise
        return None


class Database:
    """One engine per process, and the units of work over it."""

    def __init__(
        self, settings: Settings, constraint_errors: ConstraintErrors | None = None
    ) -> None:
        self.engine = create_engine(settings)
        # What units of work publish, delivered after they commit (see app/core/events.py).
        self.events = EventBus()
        self._constraint_errors = constraint_errors
        self._session_factory = async_sessionmaker(
            self.engine, expire_on_commit=False, sync_session_class=_Session
        )
        read_only_options: dict[str, Any] = {READ_ONLY_OPTION: True}
        if not settings.is_sqlite:
            # PostgreSQL reads run in autocommit: one round trip per statement, where a
            # transaction adds a BEGIN and a COMMIT to each (measured: most of a read's cost on
            # the driver). Each statement sees its own snapshot, which no read here needs more
            # than: a page and its total are separate answers anyway. SQLite keeps its read
            # transaction (a local call, not a round trip) and its query_only guard.
            read_only_options["isolation_level"] = "AUTOCOMMIT"
        self._read_only_session_factory = async_sessionmaker(
            self.engine.execution_options(**read_only_options),
            expire_on_commit=False,
            sync_session_class=_Session,
            info={_READ_ONLY: True},
        )

    @asynccontextmanager
    async def transaction(self, *, read_only: bool = False) -> AsyncIterator[AsyncSession]:
        """One unit of work: committed when the block succeeds, rolled back when it raises.

        An AppError that says `keeps_changes` (refresh-token theft revokes a login and still
        answers 401) has its changes committed before it propagates. A unique-constraint
        violation is raised as the domain error it stands for (see ConstraintErrors).
        """
        factory = self._read_only_session_factory if read_only else self._session_factory
        async with factory() as session:
            self.events.attach(session)
            try:
                yield session
            except AppError as exc:
                if exc.keeps_changes:
                    await self._commit(session)
                else:
                    await _roll_back(session)
                raise
            except BaseException as exc:
                await self._abandon(session, exc)
                raise
            else:
                await self._commit(session)

    async def _commit(self, session: AsyncSession) -> None:
        try:
            await session.commit()
        except BaseException as exc:
            await self._abandon(session, exc)
            raise
        await run_queued(session)

    async def _abandon(self, session: AsyncSession, error: BaseException) -> None:
        """Roll back after `error`; if it broke a known constraint, raise its domain error."""
        await _roll_back(session)
        if isinstance(error, sa_exc.IntegrityError) and self._constraint_errors is not None:
            domain_error = self._constraint_errors.error_for(error)
            if domain_error is not None:
                raise domain_error from error

    async def dispose(self) -> None:
        await self.engine.dispose()


async def _roll_back(session: AsyncSession) -> None:
    discard_queued(session)
    await session.rollback()


def create_engine(settings: Settings) -> AsyncEngine:
    url = settings.database_url
    # A failed statement's parameters (an email, a password hash) never reach a message or log.
    if settings.is_sqlite:
        ensure_sqlite_directory(url)
        engine = create_async_engine(
            url,
            echo=settings.DB_ECHO,
            hide_parameters=True,
            connect_args={"async_creator_fn": _connect_aiosqlite},
        )
        _make_sqlite_transactional(engine, busy_timeout_ms=settings.SQLITE_BUSY_TIMEOUT_MS)
    else:
        engine = create_async_engine(
            url,
            echo=settings.DB_ECHO,
            hide_parameters=True,
            pool_size=settings.DB_POOL_SIZE,
            max_overflow=settings.DB_MAX_OVERFLOW,
            pool_timeout=settings.DB_POOL_TIMEOUT_SECONDS,
        )
        _ping_idle_connections(engine, idle_seconds=settings.DB_PING_IDLE_SECONDS)
    _report_failed_connections(engine)
    return engine


def _ping_idle_connections(engine: AsyncEngine, *, idle_seconds: float) -> None:
    """Check a pooled connection before use only when it has sat idle for `idle_seconds`.

    A ping before every checkout (pool_pre_ping) costs three round trips per request, as much
    as the request's own work. A connection in steady use is known good; one that idled may
    have outlived a database restart, and is replaced before a request meets it. A connection
    that breaks while in use fails its request with 503 (app/core/db_errors.py), and SQLAlchemy
    then replaces every pooled connection opened before that failure.
    """

    @event.listens_for(engine.sync_engine, "checkin")
    def _checked_in(_dbapi_connection: Any, record: Any) -> None:
        record.info[_IDLE_SINCE] = time.monotonic()

    @event.listens_for(engine.sync_engine, "checkout")
    def _checked_out(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        idle_since = record.info.pop(_IDLE_SINCE, None)
        if idle_since is None or time.monotonic() - idle_since < idle_seconds:
            return
        try:
            engine.dialect.do_ping(dbapi_connection)
        except Exception as exc:
            # The pool discards this connection and checks out another (a new one if need be).
            raise sa_exc.DisconnectionError("an idle pooled connection was found closed") from exc


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
        options = connection.get_execution_options()
        read_only = bool(options.get(READ_ONLY_OPTION, False))
        # query_only is the connection's, and pooled connections serve both kinds.
        if connection.info.get("query_only") is not read_only:
            connection.exec_driver_sql(f"PRAGMA query_only={int(read_only)}")
            connection.info["query_only"] = read_only
        mode = "DEFERRED" if read_only else options.get(SQLITE_BEGIN_OPTION, "IMMEDIATE")
        connection.exec_driver_sql(f"BEGIN {mode}")


def get_database(request: Request) -> Database:
    database: Database = request.app.state.database
    return database


async def get_session(request: Request) -> AsyncIterator[AsyncSession]:
    """The request's unit of work; read-only for GET, HEAD and OPTIONS."""
    database = get_database(request)
    async with database.transaction(read_only=request.method in SAFE_METHODS) as session:
        yield session


# scope="function": the session commits before the response is sent, so a failed commit
# reaches the client as an error, never as a success.
SessionDep = Annotated[AsyncSession, Depends(get_session, scope="function")]


def ensure_sqlite_directory(url: str) -> None:
    """Create the folder of a SQLite file, so a fresh checkout needs no set-up step."""
    sa_url = make_url(url)
    if sa_url.get_backend_name() == "sqlite" and sa_url.database not in (None, "", ":memory:"):
        Path(sa_url.database).parent.mkdir(parents=True, exist_ok=True)
