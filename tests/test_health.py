from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI

from app.core.config import Settings
from app.core.db import Database
from tests.helpers import assert_problem


@pytest.fixture
async def database_down(
    app: FastAPI, settings: Settings, backend: str, tmp_path: Path
) -> AsyncIterator[None]:
    """The database goes away after start-up: every session now comes from one nobody can reach.

    The app's lifespan succeeded against the test's database; every request's session comes from
    `app.state.database`, which now names a folder (SQLite) or a closed port (PostgreSQL).
    """
    if backend == "sqlite":
        directory = tmp_path / "not-a-database-file"
        directory.mkdir()
        unreachable = f"sqlite+aiosqlite:///{directory}"
    else:
        unreachable = "postgresql+asyncpg://postgres@127.0.0.1:1/quill"
    started_with = app.state.database
    down = Database(settings.model_copy(update={"DATABASE_URL": unreachable}))
    app.state.database = down
    try:
        yield
    finally:
        app.state.database = started_with
        await down.dispose()


@pytest.mark.usefixtures("database_down")
async def test_health_answers_ok_while_the_database_is_down(client: httpx.AsyncClient) -> None:
    health = await client.get("/health")
    posts = await client.get("/api/v1/posts/")

    assert health.status_code == 200
    assert health.json() == {"status": "ok"}
    assert health.headers["X-Request-ID"]
    # The same app, for a route that reads the database: the database is down indeed.
    assert_problem(posts, 503, "database_unavailable")
