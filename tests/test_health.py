import socket
from collections.abc import AsyncIterator, Iterator

import anyio
import httpx
import pytest
from fastapi import FastAPI

from app import health as health_module
from app.core.config import Settings
from app.core.db import Database
from app.core.redis import RedisLink
from app.main import create_app
from tests.helpers import assert_problem
from tests.redis_server import RedisServer


@pytest.mark.usefixtures("database_down")
async def test_health_answers_ok_while_the_database_is_down(client: httpx.AsyncClient) -> None:
    health = await client.get("/health")
    posts = await client.get("/api/v1/posts/")

    assert health.status_code == 200
    assert health.json() == {"status": "ok"}
    assert health.headers["X-Request-ID"]
    # The same app, for a route that reads the database: the database is down indeed.
    assert_problem(posts, 503, "database_unavailable")


async def test_ready_when_the_database_and_any_redis_answer(
    client: httpx.AsyncClient, settings: Settings
) -> None:
    response = await client.get("/ready")

    assert response.status_code == 200
    expected = ["database", "redis"] if settings.REDIS_URL else ["database"]
    assert response.json() == {"status": "ok", "checked": expected}


@pytest.mark.usefixtures("database_down")
async def test_not_ready_while_the_database_is_down(client: httpx.AsyncClient) -> None:
    response = await client.get("/ready")

    body = assert_problem(response, 503, "not_ready")
    assert body["failed"] == ["database"]
    assert "database" in body["detail"]


@pytest.fixture
async def redis_app(settings: Settings, redis_server: RedisServer) -> AsyncIterator[FastAPI]:
    app = create_app(settings.model_copy(update={"REDIS_URL": redis_server.url}))
    async with app.router.lifespan_context(app):
        yield app


async def test_not_ready_while_redis_is_down_and_ready_again_once_it_is_back(
    redis_app: FastAPI, redis_server: RedisServer
) -> None:
    transport = httpx.ASGITransport(app=redis_app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        up = await client.get("/ready")
        redis_server.stop()
        down = await client.get("/ready")
        health = await client.get("/health")
        redis_server.start()
        back = await client.get("/ready")

    assert up.status_code == 200
    assert up.json() == {"status": "ok", "checked": ["database", "redis"]}
    body = assert_problem(down, 503, "not_ready")
    assert body["failed"] == ["redis"]
    assert health.status_code == 200
    assert back.status_code == 200, back.text


@pytest.mark.usefixtures("database_down")
async def test_not_ready_names_every_component_down(
    app: FastAPI, client: httpx.AsyncClient, redis_server: RedisServer, settings: Settings
) -> None:
    redis_server.stop()
    app.state.redis = RedisLink(settings.model_copy(update={"REDIS_URL": redis_server.url}))
    try:
        response = await client.get("/ready")
    finally:
        await app.state.redis.close()

    body = assert_problem(response, 503, "not_ready")
    assert body["failed"] == ["database", "redis"]


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A port that accepts connections and never says a word: a database that hangs."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(16)
        yield listener.getsockname()[1]


async def test_ready_answers_even_when_the_database_never_does(
    app: FastAPI,
    client: httpx.AsyncClient,
    settings: Settings,
    silent_port: int,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(health_module, "READY_CHECK_TIMEOUT_SECONDS", 0.2)
    hanging = Database(
        settings.model_copy(
            update={"DATABASE_URL": f"postgresql+asyncpg://postgres@127.0.0.1:{silent_port}/quill"}
        )
    )
    started_with = app.state.database
    app.state.database = hanging
    try:
        # Without the bound, asyncpg would wait 60 seconds for the server's first word.
        with anyio.fail_after(30):
            response = await client.get("/ready")
    finally:
        app.state.database = started_with
        await hanging.dispose()

    body = assert_problem(response, 503, "not_ready")
    assert body["failed"] == ["database"]
