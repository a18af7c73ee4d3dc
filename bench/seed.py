"""Fill a migrated-empty database with the data set: Alembic first, then bulk inserts.

PostgreSQL takes the rows by COPY (asyncpg), which loads a million posts in seconds; SQLite by
SQLAlchemy Core executemany on one transaction, through the models' own tables and types.
"""

import asyncio
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import asyncpg  # type: ignore[import-untyped]  # ships no type information
from sqlalchemy import create_engine, text

from app.core.config import Settings
from app.core.security import PasswordHasher
from app.models import Base
from bench import dataset

# Tables whose ids come from a sequence on PostgreSQL: COPY with explicit ids leaves the
# sequences behind, and Quill's next insert would collide.
_TABLES_WITH_SERIAL_IDS = ("users", "tags", "posts", "comments")


@dataclass(frozen=True)
class SeedTarget:
    """Where to seed: Quill's DATABASE_URL, and for PostgreSQL the plain asyncpg DSN."""

    database_url: str
    postgres_dsn: str | None = None


def migrate(target: SeedTarget, repo_root: Path) -> None:
    environment = {**os.environ, "DATABASE_URL": target.database_url}
    subprocess.run(
        [sys.executable, "-m", "alembic", "upgrade", "head"],
        cwd=repo_root,
        env=environment,
        check=True,
        capture_output=True,
    )


def password_hash() -> str:
    """Made once with Quill's own hasher and parameters, so a login verifies what production
    would."""
    return asyncio.run(PasswordHasher(Settings()).hash(dataset.BENCH_PASSWORD))


def seed(target: SeedTarget, plan: dataset.DatasetPlan, repo_root: Path) -> float:
    """Migrates and fills the database; returns the seconds it took."""
    started = time.monotonic()
    migrate(target, repo_root)
    hashed = password_hash()
    if target.postgres_dsn is not None:
        asyncio.run(_copy_into_postgres(target.postgres_dsn, plan, hashed))
    else:
        _insert_into_sqlite(target.database_url, plan, hashed)
    return time.monotonic() - started


async def _copy_into_postgres(dsn: str, plan: dataset.DatasetPlan, hashed: str) -> None:
    connection = await asyncpg.connect(dsn)
    try:
        async with connection.transaction():
            # Foreign keys are enforced by triggers, one call per row: "replica" skips them for
            # this transaction's COPY (the generated rows are consistent by construction), which
            # more than halves the time a million posts take. Needs a superuser, as the
            # benchmark's postgres role is.
            await connection.execute("SET LOCAL session_replication_role = replica")
            for table in dataset.every_table(plan, hashed):
                for chunk in table.chunks:
                    columns = list(chunk[0])
                    records = [tuple(row[column] for column in columns) for row in chunk]
                    await connection.copy_records_to_table(
                        table.table_name, records=records, columns=columns
                    )
            for table_name in _TABLES_WITH_SERIAL_IDS:
                await connection.execute(
                    f"SELECT setval(pg_get_serial_sequence('{table_name}', 'id'), "  # noqa: S608
                    f"(SELECT max(id) FROM {table_name}))"
                )
        # Fresh statistics: without them the planner guesses, and the first runs would measure
        # its guesses.
        await connection.execute("ANALYZE")
    finally:
        await connection.close()


def _insert_into_sqlite(database_url: str, plan: dataset.DatasetPlan, hashed: str) -> None:
    # The synchronous driver: executemany through the models' tables, with their type
    # conversions (UTC timestamps), in one transaction.
    engine = create_engine(database_url.replace("sqlite+aiosqlite://", "sqlite://", 1))
    try:
        with engine.begin() as connection:
            for table in dataset.every_table(plan, hashed):
                model_table = Base.metadata.tables[table.table_name]
                for chunk in table.chunks:
                    connection.execute(model_table.insert(), chunk)
            connection.execute(text("ANALYZE"))
    finally:
        engine.dispose()
