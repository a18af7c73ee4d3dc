"""Alembic's entry point, async, for SQLite and PostgreSQL alike.

The database comes from Quill's settings unless a caller passes a URL in
`config.attributes["database_url"]` (tests and start-up migration do).
"""

import asyncio
from logging.config import fileConfig

from alembic import context
from sqlalchemy import pool, text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine

from app.core.config import get_settings
from app.core.db import ensure_sqlite_directory
from app.models import Base

config = context.config
if config.config_file_name is not None and config.attributes.get("configure_logging", True):
    fileConfig(config.config_file_name, disable_existing_loggers=False)

target_metadata = Base.metadata
# Any fixed number: it names the lock that keeps concurrent migrators from interleaving.
MIGRATION_LOCK_ID = 0x5155494C4C  # "QUILL"


def database_url() -> str:
    url = config.attributes.get("database_url")
    return str(url) if url else get_settings().database_url


def run_migrations_offline() -> None:
    context.configure(
        url=database_url(),
        target_metadata=target_metadata,
        literal_binds=True,
        dialect_opts={"paramstyle": "named"},
        render_as_batch=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def do_run_migrations(connection: Connection) -> None:
    is_sqlite = connection.dialect.name == "sqlite"
    if is_sqlite:
        # Batch migrations rebuild tables; with foreign keys on, dropping the old table would
        # cascade-delete child rows. The check afterwards proves nothing was left dangling.
        connection.exec_driver_sql("PRAGMA foreign_keys=OFF")
    else:
        # Held until the commit below: concurrent migrators (several workers starting with
        # AUTO_MIGRATE, or two deploys) run one after the other, the later finding nothing to do.
        connection.execute(text("SELECT pg_advisory_xact_lock(:id)"), {"id": MIGRATION_LOCK_ID})
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=is_sqlite,
        compare_type=True,
    )
    # The connection is already in a transaction, so Alembic runs inside it and we commit.
    with context.begin_transaction():
        context.run_migrations()
    if is_sqlite:
        problems = connection.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
        if problems:
            raise RuntimeError(f"migration left rows violating foreign keys: {problems[:5]}")
    connection.commit()


async def run_async_migrations() -> None:
    url = database_url()
    ensure_sqlite_directory(url)
    engine = create_async_engine(url, poolclass=pool.NullPool)
    try:
        async with engine.connect() as connection:
            await connection.run_sync(do_run_migrations)
    finally:
        await engine.dispose()


def run_migrations_online() -> None:
    asyncio.run(run_async_migrations())


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
