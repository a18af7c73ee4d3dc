"""What many tests share: a session beside the app's, reading rows back, captured logs, and the
one check of an error answer. Data is made by tests/factories.py."""

import asyncio
from collections.abc import Awaitable, Callable, Coroutine, Iterator
from contextlib import AbstractContextManager, contextmanager
from http import HTTPStatus
from typing import Any

import httpx
import pytest
import structlog
from fastapi import FastAPI
from fastapi.routing import APIRoute, iter_route_contexts
from sqlalchemy import Executable, Select, event, func, pool, select, text
from sqlalchemy.ext.asyncio import AsyncSession, create_async_engine
from structlog.typing import EventDict

from app.core.db import SQLITE_BEGIN_OPTION, Database
from app.core.security import PasswordHasher
from app.models import AccountToken, Base, User
from app.models.user import username_key

PROBLEM_FIELDS = {"type", "title", "status", "detail", "code", "request_id"}


def open_session(database: Database) -> AsyncSession:
    """A session beside the app's, for making and checking rows.

    On SQLite it begins DEFERRED, so a test that reads does not hold the write lock the app's
    next write would wait for; it may still write.
    """
    engine = database.engine.execution_options(**{SQLITE_BEGIN_OPTION: "DEFERRED"})
    return AsyncSession(engine, expire_on_commit=False)


def new_user(username: str, *, email: str | None = None) -> User:
    """An unsaved user row with a fake password hash: for tests that only need the row."""
    return User(
        username=username,
        username_key=username_key(username),
        email=email or f"{username}@example.com",
        hashed_password="not-a-real-hash",
    )


async def count_rows(session: AsyncSession, statement: Select[Any]) -> int:
    """The committed count a statement gives; the read ends, so no writer waits for it."""
    count = await session.scalar(statement)
    await session.commit()
    return int(count or 0)


async def count_users(session: AsyncSession) -> int:
    return await count_rows(session, select(func.count()).select_from(User))


async def usernames(database: Database) -> list[str]:
    async with open_session(database) as session:
        return list(await session.scalars(select(User.username).order_by(User.id)))


def capture_logs() -> AbstractContextManager[list[EventDict]]:
    """structlog's capture, with the request context merged in as the configured logger does."""
    return structlog.testing.capture_logs(processors=[structlog.contextvars.merge_contextvars])


def assert_problem(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    """The response is an RFC 9457 problem of this status and code; its body."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body: dict[str, Any] = response.json()
    assert body.keys() >= PROBLEM_FIELDS
    assert body["status"] == status
    assert body["code"] == code
    assert body["type"] == f"urn:quill:problem:{code}"
    assert body["title"] == HTTPStatus(status).phrase
    assert isinstance(body["detail"], str)
    assert body["detail"]
    assert body["request_id"] == response.headers["X-Request-ID"]
    return body


def on_hashing(
    app: FastAPI, monkeypatch: pytest.MonkeyPatch, callback: Callable[[], Awaitable[None]]
) -> None:
    """From now on, each password hash or verification the app computes first awaits
    `callback`: what happens while a request hashes, with no transaction open."""
    hasher: PasswordHasher = app.state.password_hasher

    def preceded(method: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
        async def run(*args: Any) -> Any:
            await callback()
            return await method(*args)

        return run

    monkeypatch.setattr(hasher, "hash", preceded(hasher.hash))
    monkeypatch.setattr(hasher, "verify", preceded(hasher.verify))


def connections_during_hashing(app: FastAPI, monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """How many connections the app's pool had checked out at each hash or verification it
    computes from now on (0: no transaction open)."""
    pool = app.state.database.engine.pool
    seen: list[int] = []

    async def record() -> None:
        seen.append(pool.checkedout())

    on_hashing(app, monkeypatch, record)
    return seen


def committing_once(database: Database, statement: Executable) -> Callable[[], Awaitable[None]]:
    """A callback that, the first time it runs, executes and commits `statement` on its own."""
    done = False

    async def change() -> None:
        nonlocal done
        if not done:
            done = True
            async with open_session(database) as session:
                await session.execute(statement)
                await session.commit()

    return change


async def racing_an_uncommitted_change(
    database_url: str, change: Executable, request: Coroutine[Any, Any, httpx.Response]
) -> httpx.Response:
    """Send `request` while another transaction has made `change` and not yet committed; commit
    it once PostgreSQL says the request waits for its lock. The request's answer."""
    engine = create_async_engine(database_url, poolclass=pool.NullPool)
    try:
        async with engine.connect() as other, engine.connect() as watcher:
            await other.begin()
            await other.execute(change)
            pending = asyncio.create_task(request)
            for _ in range(500):
                waiting = await watcher.scalar(_WAITING_FOR_A_LOCK)
                await watcher.rollback()  # statistics are a snapshot per transaction
                if waiting or pending.done():
                    break
                await asyncio.sleep(0.01)
            else:
                pytest.fail("the request never waited for the other transaction")
            await other.commit()
            return await pending
    finally:
        await engine.dispose()


_WAITING_FOR_A_LOCK = text(
    "SELECT count(*) FROM pg_stat_activity"
    " WHERE datname = current_database() AND wait_event_type = 'Lock'"
)


@contextmanager
def recorded_statements(app: FastAPI) -> Iterator[list[str]]:
    """The SQL statements the app's engine runs inside the block."""
    seen: list[str] = []
    engine = app.state.database.engine.sync_engine

    def record(*args: Any) -> None:
        seen.append(args[2])  # (conn, cursor, statement, parameters, context, executemany)

    event.listen(engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", record)


def api_routes(app: FastAPI) -> Iterator[tuple[str, str, APIRoute]]:
    """(method, full path, route) of every FastAPI route the app serves, included routers' too."""
    for context in iter_route_contexts(app.routes):
        route = context.original_route
        if isinstance(route, APIRoute):
            for method in sorted(context.methods or ()):
                yield method, str(context.path), route


# --- metrics, as GET /metrics shows them ---

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def parse(exposition: str) -> Samples:
    # Imported here: prometheus_client must load after app.core.metrics has chosen its directory.
    from prometheus_client.parser import text_string_to_metric_families

    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(exposition)
        for sample in family.samples
    }


async def scrape(client: httpx.AsyncClient) -> Samples:
    response = await client.get("/metrics")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "text/plain; version=0.0.4; charset=utf-8"
    return parse(response.text)


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def routes_labelled(samples: Samples) -> set[str]:
    return {dict(labels)["route"] for (name, labels) in samples if name == "http_requests_total"}


def request_labels(method: str, route: str, status: int) -> dict[str, str]:
    return {"method": method, "route": route, "status": str(status)}


# --- what the account flows left in the database ---


async def stored_user(session: AsyncSession, user_id: int) -> User:
    statement = select(User).where(User.id == user_id).execution_options(populate_existing=True)
    user = await session.scalar(statement)
    await session.commit()  # end the read: on SQLite it would hold up the app's writes
    assert user is not None
    return user


async def snapshot(database: Database) -> dict[str, list[tuple[Any, ...]]]:
    """Every committed row of every table, in a stable order: equal before and after a request
    means it changed nothing in the database."""
    rows: dict[str, list[tuple[Any, ...]]] = {}
    async with open_session(database) as session:
        for table in Base.metadata.sorted_tables:
            result = await session.execute(select(table).order_by(*table.primary_key.columns))
            rows[table.name] = [tuple(row) for row in result]
        await session.commit()
    return rows


async def unspent_tokens(session: AsyncSession, user_id: int) -> int:
    statement = (
        select(func.count())
        .select_from(AccountToken)
        .where(AccountToken.user_id == user_id, AccountToken.used_at.is_(None))
    )
    return await count_rows(session, statement)
