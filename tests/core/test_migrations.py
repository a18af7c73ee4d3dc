import asyncio
import fcntl
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from fastapi import FastAPI
from sqlalchemy import MetaData, inspect, pool, text
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.ext.asyncio import create_async_engine

from app.core.config import Settings
from app.core.migrations import DatabaseNotMigrated, alembic_config, upgrade_to_head
from app.main import create_app
from app.models import Base
from tests.core.conftest import Serve

# The advisory lock migrations/env.py takes on PostgreSQL.
MIGRATION_LOCK_ID = 0x5155494C4C
QUILL_TABLES = {"users", "posts", "logins", "refresh_tokens"}
NEW_USER = {"username": "ann", "email": "ann@example.com", "password": "correct horse battery"}


async def schema_differences(database_url: str, metadata: MetaData) -> list[Any]:
    """What `alembic revision --autogenerate` would write to turn the database into `metadata`."""

    def compare(connection: Connection) -> list[Any]:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        return list(compare_metadata(context, metadata))

    engine = create_async_engine(database_url, poolclass=pool.NullPool)
    try:
        async with engine.connect() as connection:
            return await connection.run_sync(compare)
    finally:
        await engine.dispose()


async def table_names(database_url: str) -> set[str]:
    def names(connection: Connection) -> set[str]:
        return set(inspect(connection).get_table_names())

    engine = create_async_engine(database_url, poolclass=pool.NullPool)
    try:
        async with engine.connect() as connection:
            return await connection.run_sync(names)
    finally:
        await engine.dispose()


async def downgrade_to_base(database_url: str) -> None:
    # env.py runs its own event loop (asyncio.run), so Alembic runs in a thread.
    await asyncio.to_thread(command.downgrade, alembic_config(database_url), "base")


@contextmanager
def _file_lock(path: Path) -> Iterator[None]:
    with path.open("w") as lock_file:
        fcntl.flock(lock_file, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock_file, fcntl.LOCK_UN)


@asynccontextmanager
async def migration_lock_held(database_url: str) -> AsyncIterator[None]:
    """Hold the lock another worker's migration would hold (see app.core.migrations, env.py)."""
    url = make_url(database_url)
    if url.get_backend_name() == "sqlite":
        with _file_lock(Path(f"{url.database}.migrate.lock")):
            yield
        return
    engine = create_async_engine(database_url, poolclass=pool.NullPool)
    try:
        async with engine.connect() as connection:
            await connection.execute(
                text("SELECT pg_advisory_lock(:id)"), {"id": MIGRATION_LOCK_ID}
            )
            yield
    finally:
        await engine.dispose()


async def start(app: FastAPI) -> None:
    async with app.router.lifespan_context(app):
        pass


def test_the_models_define_every_quill_table() -> None:
    assert set(Base.metadata.tables) == QUILL_TABLES


async def test_migrations_and_models_agree(database_url: str) -> None:
    assert await schema_differences(database_url, Base.metadata) == []
    # The comparison does look at the migrated database: against no models, every table is extra.
    extra = await schema_differences(database_url, MetaData())
    assert {diff[1].name for diff in extra if diff[0] == "remove_table"} == QUILL_TABLES


async def test_downgrade_to_base_removes_every_table_and_upgrade_restores_them(
    database_url: str,
) -> None:
    await downgrade_to_base(database_url)
    assert await table_names(database_url) - {"alembic_version"} == set()

    await asyncio.to_thread(upgrade_to_head, database_url)
    assert await table_names(database_url) - {"alembic_version"} == QUILL_TABLES
    assert await schema_differences(database_url, Base.metadata) == []


async def test_a_migration_waits_while_another_worker_holds_the_migration_lock(
    database_url: str,
) -> None:
    # Workers starting together with AUTO_MIGRATE each migrate, one after the other.
    await downgrade_to_base(database_url)

    async with migration_lock_held(database_url):
        migrating = asyncio.create_task(asyncio.to_thread(upgrade_to_head, database_url))
        await asyncio.sleep(0.5)
        waited = not migrating.done()
    await migrating

    assert waited
    assert await schema_differences(database_url, Base.metadata) == []


async def test_startup_refuses_a_database_behind_the_latest_migration(
    settings: Settings, database_url: str
) -> None:
    await downgrade_to_base(database_url)
    app = create_app(settings.model_copy(update={"AUTO_MIGRATE": False}))

    with pytest.raises(DatabaseNotMigrated, match="alembic upgrade head"):
        await start(app)
    assert await table_names(database_url) - {"alembic_version"} == set()


async def test_startup_with_auto_migrate_brings_the_database_to_head(
    settings: Settings, database_url: str, serve: Serve
) -> None:
    await downgrade_to_base(database_url)
    app = create_app(settings.model_copy(update={"AUTO_MIGRATE": True}))

    async with serve(app) as client:
        response = await client.post("/api/v1/users/", json=NEW_USER)

    assert response.status_code == 201, response.text
    assert await schema_differences(database_url, Base.metadata) == []


async def test_first_start_on_the_embedded_sqlite_default_creates_and_migrates_it(
    tmp_path: Path, serve: Serve
) -> None:
    data_dir = tmp_path / "fresh" / "data"
    settings = Settings(
        _env_file=None,
        ENVIRONMENT="test",
        DATABASE_URL="",
        DATA_DIR=data_dir,
        SECRET_KEY="test-secret-key-that-is-long-enough-for-hs256",
    )
    app = create_app(settings)

    async with serve(app) as client:
        response = await client.post("/api/v1/users/", json=NEW_USER)

    assert response.status_code == 201, response.text
    assert (data_dir / "quill.db").is_file()
    assert await schema_differences(settings.database_url, Base.metadata) == []
