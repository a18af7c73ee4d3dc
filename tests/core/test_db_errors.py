"""Which database errors mean "try again" (503) and which are bugs (500), on both databases."""

import asyncio

import pytest
from fastapi import Request
from sqlalchemy import exc as sa_exc
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, create_async_engine

from app.core.config import Settings
from app.core.db import SessionDep
from app.core.db_errors import describe_database_error
from app.core.error_handlers import as_app_error
from app.core.errors import DatabaseUnavailable
from app.main import create_app
from tests.conftest import Serve
from tests.factories import make_user
from tests.helpers import assert_problem


async def test_a_statement_the_schema_cannot_run_is_a_500_bug_not_a_503(
    settings: Settings, serve: Serve
) -> None:
    app = create_app(settings)

    @app.get("/test/missing-column")
    async def missing_column(session: SessionDep) -> None:
        await session.execute(text("SELECT no_such_column FROM users"))

    async with serve(app) as client:
        response = await client.get("/test/missing-column")

    assert_problem(response, 500, "internal_error")


async def test_a_timeout_that_is_not_the_databases_is_no_database_unavailable(
    settings: Settings, serve: Serve
) -> None:
    app = create_app(settings)

    @app.get("/test/slow-neighbour")
    async def slow_neighbour() -> None:
        raise TimeoutError("a call to some other service timed out")

    async with serve(app) as client:
        response = await client.get("/test/slow-neighbour")

    assert_problem(response, 500, "internal_error")


@pytest.mark.usefixtures("postgresql_only")
async def test_a_deadlock_victim_is_told_to_try_again(
    database_url: str, session: AsyncSession
) -> None:
    first, second = await make_user(session, username="ann"), await make_user(session)
    engine = create_async_engine(database_url)
    lock = "UPDATE users SET bio = 'x' WHERE id = :id"
    try:
        async with engine.connect() as one, engine.connect() as other:
            await one.execute(text(lock), {"id": first.id})
            await other.execute(text(lock), {"id": second.id})
            results = await asyncio.gather(
                one.execute(text(lock), {"id": second.id}),
                other.execute(text(lock), {"id": first.id}),
                return_exceptions=True,
            )
    finally:
        await engine.dispose()

    [victim] = [result for result in results if isinstance(result, Exception)]
    assert isinstance(victim, sa_exc.DBAPIError)
    assert describe_database_error(victim)["sqlstate"] == "40P01"
    request = Request({"type": "http", "method": "PATCH", "path": "/", "headers": []})
    answer = as_app_error(request, victim, retry_after_seconds=5)
    assert isinstance(answer, DatabaseUnavailable)
    assert answer.headers == {"Retry-After": "5"}


@pytest.mark.usefixtures("postgresql_only")
async def test_a_connection_whose_backend_was_ended_is_told_to_try_again(database_url: str) -> None:
    # What the driver raises depends on when the end reaches it: a closed connection, one closed
    # in the middle of an operation, or (most often, measured) an internal state error with no
    # SQLSTATE. Each is a restart seen from the pool, never a bug.
    admin = create_async_engine(database_url)
    failures: list[Exception] = []
    try:
        for _ in range(20):
            engine = create_async_engine(database_url)
            try:
                async with engine.connect() as connection:
                    backend = await connection.scalar(text("SELECT pg_backend_pid()"))
                async with admin.connect() as other:
                    await other.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": backend})
                try:
                    async with engine.connect() as connection:
                        await connection.execute(text("SELECT 1"))
                except sa_exc.DBAPIError as error:
                    failures.append(error)
            finally:
                await engine.dispose()
    finally:
        await admin.dispose()

    assert failures
    request = Request({"type": "http", "method": "GET", "path": "/", "headers": []})
    for failure in failures:
        answer = as_app_error(request, failure, retry_after_seconds=5)
        assert isinstance(answer, DatabaseUnavailable), describe_database_error(failure)
