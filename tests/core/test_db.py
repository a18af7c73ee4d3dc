import sqlite3
from typing import Any

import pytest
from fastapi import FastAPI
from sqlalchemy import event, func, select, text
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncSession, create_async_engine

from app.core.config import Settings
from app.core.db import Database, SessionDep
from app.core.errors import AppError, Conflict
from app.main import create_app
from app.models import Post, User
from tests.conftest import Serve
from tests.factories import make_user
from tests.helpers import assert_problem, new_user, open_session, usernames


class RevokedAndRefused(AppError):
    """Like refresh-token theft: the request fails, and what it changed must stay."""

    status_code = 401
    code = "revoked_and_refused"
    keeps_changes = True


def make_boundary_app(settings: Settings) -> FastAPI:
    """The app with a route that adds a user, then ends the way `outcome` says."""
    app = create_app(settings)

    @app.post("/test/users/{username}")
    async def add_user(username: str, session: SessionDep, outcome: str = "success") -> str:
        session.add(new_user(username))
        if outcome != "unflushed":
            await session.flush()
        if outcome == "app_error":
            raise Conflict
        if outcome == "keeps_changes":
            raise RevokedAndRefused
        if outcome == "crash":
            raise RuntimeError("the route failed")
        return username

    return app


@pytest.fixture
def boundary_app(settings: Settings) -> FastAPI:
    return make_boundary_app(settings)


async def test_route_that_succeeds_commits_its_changes(boundary_app: FastAPI, serve: Serve) -> None:
    async with serve(boundary_app) as client:
        response = await client.post("/test/users/ann")
        assert response.status_code == 200, response.text
        assert response.json() == "ann"
        assert await usernames(boundary_app.state.database) == ["ann"]


async def test_route_that_raises_an_app_error_rolls_back_its_changes(
    boundary_app: FastAPI, serve: Serve
) -> None:
    async with serve(boundary_app) as client:
        response = await client.post("/test/users/ann", params={"outcome": "app_error"})
        assert response.status_code == 409, response.text
        assert response.json()["code"] == "conflict"
        assert await usernames(boundary_app.state.database) == []


async def test_app_error_that_keeps_changes_commits_them_and_still_fails(
    boundary_app: FastAPI, serve: Serve
) -> None:
    async with serve(boundary_app) as client:
        response = await client.post("/test/users/ann", params={"outcome": "keeps_changes"})
        assert response.status_code == 401, response.text
        assert response.json()["code"] == "revoked_and_refused"
        assert await usernames(boundary_app.state.database) == ["ann"]


async def test_route_that_crashes_rolls_back_its_changes(
    boundary_app: FastAPI, serve: Serve
) -> None:
    async with serve(boundary_app) as client:
        response = await client.post("/test/users/ann", params={"outcome": "crash"})
        assert response.status_code == 500, response.text
        assert response.json()["code"] == "internal_error"
        assert await usernames(boundary_app.state.database) == []


async def test_failing_commit_is_a_5xx_never_a_success_and_keeps_nothing(
    boundary_app: FastAPI, serve: Serve, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def failing_commit(self: AsyncSession) -> None:
        raise RuntimeError("the commit failed")

    async with serve(boundary_app) as client:
        monkeypatch.setattr(AsyncSession, "commit", failing_commit)
        response = await client.post("/test/users/ann")
        monkeypatch.undo()

        assert response.status_code == 500, response.text
        assert response.json()["code"] == "internal_error"
        assert await usernames(boundary_app.state.database) == []


async def test_commit_that_breaks_a_unique_constraint_is_its_domain_error_and_keeps_nothing(
    boundary_app: FastAPI, serve: Serve
) -> None:
    async with serve(boundary_app) as client:
        first = await client.post("/test/users/ann")
        # Nothing is flushed in the route: the INSERT, and its violation, come with the commit.
        second = await client.post("/test/users/ANN", params={"outcome": "unflushed"})
        assert first.status_code == 200, first.text
        assert second.status_code == 409, second.text
        assert second.json()["code"] == "username_taken"
        assert await usernames(boundary_app.state.database) == ["ann"]


async def test_sqlite_readers_are_not_blocked_by_a_writer_but_writers_wait(
    backend: str, settings: Settings, serve: Serve
) -> None:
    if backend != "sqlite":
        pytest.skip("SQLite's transaction modes only")
    app = make_boundary_app(settings.model_copy(update={"SQLITE_BUSY_TIMEOUT_MS": 100}))
    path = make_url(settings.database_url).database
    assert path is not None

    async with serve(app) as client:
        writer = sqlite3.connect(path, isolation_level=None)
        try:
            writer.execute("BEGIN IMMEDIATE")
            writer.execute("DELETE FROM posts")
            read = await client.get("/api/v1/posts/")
            write = await client.post("/test/users/ann")
        finally:
            writer.close()
        remaining = await usernames(app.state.database)

    assert read.status_code == 200, read.text
    assert read.json()["items"] == []
    assert write.status_code == 503, write.text
    assert write.json()["code"] == "database_unavailable"
    assert remaining == []


async def test_foreign_keys_are_enforced(session: AsyncSession) -> None:
    session.add(Post(title="Orphan", slug="orphan", content="No author.", author_id=2**31 - 1))

    with pytest.raises(sa_exc.IntegrityError):
        await session.flush()


async def test_deleting_a_user_cascades_to_their_posts(session: AsyncSession) -> None:
    author = await make_user(session)
    session.add(Post(title="Mine", slug="mine", content="Text.", author_id=author.id))
    await session.commit()

    await session.delete(author)
    await session.commit()

    assert await session.scalar(select(func.count()).select_from(Post)) == 0


async def test_savepoint_rolls_back_only_its_own_changes(session: AsyncSession) -> None:
    session.add(new_user("outer"))
    await session.flush()
    nested = await session.begin_nested()
    session.add(new_user("inner"))
    await session.flush()
    await nested.rollback()
    await session.commit()

    assert list(await session.scalars(select(User.username))) == ["outer"]


async def test_a_get_that_writes_fails_and_writes_nothing(settings: Settings, serve: Serve) -> None:
    app = create_app(settings)

    @app.get("/test/write-on-read")
    async def write_on_read(session: SessionDep) -> None:
        session.add(new_user("ann"))
        await session.flush()

    async with serve(app) as client:
        response = await client.get("/test/write-on-read")
        stored = await usernames(app.state.database)

    assert_problem(response, 500, "internal_error")
    assert stored == []


async def test_a_failed_statement_never_shows_its_parameters(settings: Settings) -> None:
    database = Database(settings)
    try:
        async with open_session(database) as session:
            session.add(new_user("ann"))
            await session.commit()
            # The same username again: the hash in the INSERT must not come back in the message.
            clash = new_user("ann", email="other@example.com")
            clash.hashed_password = "$argon2id$secret-hash-of-ann"
            session.add(clash)
            with pytest.raises(sa_exc.IntegrityError) as failure:
                await session.commit()
    finally:
        await database.dispose()

    assert "secret-hash-of-ann" not in str(failure.value)
    assert "other@example.com" not in str(failure.value)
    assert "hidden due to hide_parameters" in str(failure.value)


async def test_the_tests_own_session_reads_without_holding_sqlites_write_lock(
    settings: Settings, serve: Serve
) -> None:
    # Short, so a lock held by the reading session would show as a 503 at once, not in 5 s.
    app = create_app(settings.model_copy(update={"SQLITE_BUSY_TIMEOUT_MS": 100}))
    async with serve(app) as client, open_session(app.state.database) as reader:
        await reader.scalar(select(func.count()).select_from(User))  # a read, left open
        response = await client.post(
            "/api/v1/users/",
            json={"username": "ann", "email": "ann@example.com", "password": "a long passphrase"},
        )

    assert response.status_code == 201, response.text


# A read the response cache never answers (only a list's first page is cached).
UNCACHED_READ = "/api/v1/posts/?offset=1"


async def end_the_apps_connections(settings: Settings) -> int:
    """What a database restart does to a pool: every server connection but ours ends."""
    engine = create_async_engine(settings.database_url)
    try:
        async with engine.connect() as connection:
            ended = await connection.scalar(
                text(
                    "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
                    " WHERE datname = current_database() AND pid <> pg_backend_pid()"
                )
            )
    finally:
        await engine.dispose()
    return int(ended or 0)


@pytest.mark.usefixtures("postgresql_only")
async def test_a_pooled_connection_that_died_while_idle_is_replaced_before_use(
    settings: Settings, serve: Serve
) -> None:
    app = create_app(settings.model_copy(update={"DB_PING_IDLE_SECONDS": 0}))
    async with serve(app) as client:
        before = await client.get(UNCACHED_READ)
        ended = await end_the_apps_connections(settings)
        after = await client.get(UNCACHED_READ)

    assert before.status_code == 200
    assert ended >= 1
    assert after.status_code == 200, after.text


@pytest.mark.usefixtures("postgresql_only")
async def test_a_connection_in_steady_use_is_not_pinged_and_one_that_dies_costs_one_503(
    settings: Settings, serve: Serve
) -> None:
    # Never idle long enough to be pinged: the dead connection is found by the request itself,
    # which gets a 503 to retry; the pool then replaces its other connections, and the retry works.
    app = create_app(settings.model_copy(update={"DB_PING_IDLE_SECONDS": 3600}))
    async with serve(app) as client:
        await client.get(UNCACHED_READ)
        await end_the_apps_connections(settings)
        failed = await client.get(UNCACHED_READ)
        retried = await client.get(UNCACHED_READ)

    assert_problem(failed, 503, "database_unavailable")
    assert "Retry-After" in failed.headers
    assert retried.status_code == 200, retried.text


BEGIN_WRITE = "BEGIN ISOLATION LEVEL READ COMMITTED;"
PING = ["BEGIN;", ";", "ROLLBACK;"]


@pytest.mark.usefixtures("postgresql_only")
@pytest.mark.parametrize(
    ("ping_idle_seconds", "read_sends", "write_sends"),
    [
        # In steady use: a read is its statement alone, one round trip; a write adds two.
        pytest.param(3600, [], [BEGIN_WRITE, "COMMIT;"], id="in-use"),
        # Idle past the setting (0: always): a ping of three round trips comes first.
        pytest.param(0, PING, [*PING, BEGIN_WRITE, "COMMIT;"], id="idle"),
    ],
)
async def test_what_a_unit_of_work_sends_besides_its_statements(
    settings: Settings, ping_idle_seconds: float, read_sends: list[str], write_sends: list[str]
) -> None:
    database = Database(settings.model_copy(update={"DB_PING_IDLE_SECONDS": ping_idle_seconds}))
    sent: list[str] = []

    # asyncpg logs the simple queries it sends (transaction control, pings), not the prepared
    # statements that are the units' own work.
    @event.listens_for(database.engine.sync_engine, "connect")
    def _log_queries(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.driver_connection.add_query_logger(lambda query: sent.append(query.query))

    sends: dict[bool, list[str]] = {}
    try:
        async with database.transaction() as session:  # opens the pooled connection
            await session.execute(select(1))
        for read_only in (True, False):
            sent.clear()
            async with database.transaction(read_only=read_only) as session:
                await session.execute(select(func.count()).select_from(User))
            sends[read_only] = list(sent)
    finally:
        await database.dispose()

    assert sends[True] == read_sends
    assert sends[False] == write_sends
