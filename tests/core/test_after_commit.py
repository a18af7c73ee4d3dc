"""After-commit work: it runs once the request's unit of work committed, and never otherwise."""

from dataclasses import dataclass

import pytest
from fastapi import FastAPI

from app.core.after_commit import on_commit
from app.core.config import Settings
from app.core.db import Database, SessionDep, outside_transaction
from app.core.errors import Conflict
from app.core.events import Event, publish
from app.main import create_app
from tests.conftest import Serve
from tests.helpers import capture_logs, new_user, usernames


@dataclass(frozen=True, slots=True)
class Greeted(Event):
    name: str


def make_hook_app(settings: Settings, ran: list[str]) -> FastAPI:
    """The app with a route that adds a user, queues work after commit, and ends as `outcome`."""
    app = create_app(settings)

    @app.post("/test/users/{username}")
    async def add_user(username: str, session: SessionDep, outcome: str = "success") -> str:
        session.add(new_user(username))
        on_commit(session, lambda: ran.append(f"first {username}"))

        async def second() -> None:
            ran.append(f"second {username}")

        on_commit(session, second)
        await session.flush()
        if outcome == "app_error":
            raise Conflict
        if outcome == "crash":
            raise RuntimeError("the route failed")
        if outcome == "duplicate":
            # The same username again: the INSERT, and its violation, come with the commit.
            session.add(new_user(username, email="other@example.com"))
        return username

    return app


@pytest.fixture
def ran() -> list[str]:
    return []


async def test_queued_work_runs_after_the_commit_in_the_order_queued(
    settings: Settings, serve: Serve, ran: list[str]
) -> None:
    app = make_hook_app(settings, ran)
    async with serve(app) as client:
        response = await client.post("/test/users/ann")
        stored = await usernames(app.state.database)

    assert response.status_code == 200, response.text
    assert ran == ["first ann", "second ann"]
    assert stored == ["ann"]


@pytest.mark.parametrize(
    ("outcome", "status"),
    [("app_error", 409), ("crash", 500), ("duplicate", 409)],
    ids=["app-error", "crash", "failed-commit"],
)
async def test_queued_work_never_runs_when_the_unit_of_work_does_not_commit(
    settings: Settings, serve: Serve, ran: list[str], outcome: str, status: int
) -> None:
    app = make_hook_app(settings, ran)
    async with serve(app) as client:
        response = await client.post("/test/users/ann", params={"outcome": outcome})
        stored = await usernames(app.state.database)

    assert response.status_code == status, response.text
    assert ran == []
    assert stored == []


async def test_failing_work_is_logged_with_the_request_id_and_the_request_still_succeeds(
    settings: Settings, serve: Serve, ran: list[str]
) -> None:
    app = create_app(settings)

    @app.post("/test/failing-hook")
    async def failing_hook(session: SessionDep) -> str:
        session.add(new_user("ann"))

        def broken() -> None:
            raise RuntimeError("the cache is down")

        on_commit(session, broken)
        on_commit(session, lambda: ran.append("after the broken one"))
        return "done"

    async with serve(app) as client:
        with capture_logs() as logs:
            response = await client.post("/test/failing-hook", headers={"X-Request-ID": "hook-1"})
        stored = await usernames(app.state.database)

    assert response.status_code == 200, response.text
    assert stored == ["ann"]
    assert ran == ["after the broken one"]
    [failure] = [entry for entry in logs if entry["event"] == "db.after_commit_failed"]
    assert failure["request_id"] == "hook-1"
    assert failure["exc_info"] is True


async def test_published_events_reach_their_listeners_only_after_a_commit(
    settings: Settings, serve: Serve
) -> None:
    app = create_app(settings)
    heard: list[Event] = []

    @app.post("/test/greet/{name}")
    async def greet(name: str, session: SessionDep, fail: bool = False) -> None:
        publish(session, Greeted(name=name))
        if fail:
            raise Conflict

    async with serve(app) as client:
        database: Database = app.state.database
        database.events.subscribe(Greeted, heard.append)
        committed = await client.post("/test/greet/ann")
        rolled_back = await client.post("/test/greet/bob", params={"fail": True})

    assert (committed.status_code, rolled_back.status_code) == (200, 409)
    assert heard == [Greeted(name="ann")]


async def command(database: Database, ran: list[str], *, fail: bool) -> None:
    """What a management command or a worker does: one unit of work of its own."""
    async with database.transaction() as session:
        session.add(new_user("cli"))
        on_commit(session, lambda: ran.append("committed"))
        if fail:
            raise RuntimeError("the command failed")


async def test_a_unit_of_work_outside_a_request_runs_queued_work_like_a_request(
    settings: Settings, ran: list[str]
) -> None:
    database = Database(settings)
    try:
        with pytest.raises(RuntimeError, match="the command failed"):
            await command(database, ran, fail=True)
        assert ran == []
        await command(database, ran, fail=False)
        assert ran == ["committed"]
        assert await usernames(database) == ["cli"]
    finally:
        await database.dispose()


async def test_a_unit_of_work_that_has_written_cannot_step_outside_its_transaction(
    settings: Settings,
) -> None:
    async def hash_after_writing(database: Database) -> None:
        async with database.transaction() as session:
            session.add(new_user("ann"))
            await session.flush()
            async with outside_transaction(session):
                pass

    database = Database(settings)
    try:
        with pytest.raises(RuntimeError, match="changed something"):
            await hash_after_writing(database)
        assert await usernames(database) == []
    finally:
        await database.dispose()
