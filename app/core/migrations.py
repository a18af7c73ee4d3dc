"""Start-up schema handling: migrate (AUTO_MIGRATE) or refuse to run on an old schema."""

import contextlib
from collections.abc import Iterator
from functools import cache
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.ext.asyncio import AsyncEngine

PROJECT_ROOT = Path(__file__).resolve().parents[2]
ALEMBIC_INI = PROJECT_ROOT / "alembic.ini"


class DatabaseNotMigrated(RuntimeError):
    pass


def alembic_config(database_url: str) -> Config:
    config = Config(str(ALEMBIC_INI))
    config.attributes["database_url"] = database_url
    # The application has configured logging already; fileConfig would replace it.
    config.attributes["configure_logging"] = False
    return config


def upgrade_to_head(database_url: str) -> None:
    """Run `alembic upgrade head`. Blocking: call it from a worker thread, not the event loop."""
    with _sqlite_migration_lock(database_url):
        command.upgrade(alembic_config(database_url), "head")


async def ensure_at_head(engine: AsyncEngine) -> None:
    async with engine.connect() as connection:
        current = await connection.run_sync(_current_heads)
    expected = code_heads()
    if current != expected:
        raise DatabaseNotMigrated(
            f"The database schema is at {sorted(current) or 'nothing'}, the code needs "
            f"{sorted(expected)}. Run `alembic upgrade head` (or set AUTO_MIGRATE=true)."
        )


@cache
def code_heads() -> frozenset[str]:
    """The heads of the migrations in the code, read once per process: they change with a deploy."""
    return frozenset(ScriptDirectory.from_config(Config(str(ALEMBIC_INI))).get_heads())


def _current_heads(connection: Connection) -> set[str]:
    return set(MigrationContext.configure(connection).get_current_heads())


@contextlib.contextmanager
def _sqlite_migration_lock(database_url: str) -> Iterator[None]:
    """Serialize migrations of one SQLite file across the worker processes starting together.

    PostgreSQL takes an advisory lock in env.py instead; SQLite has none, so use a lock file.
    """
    url = make_url(database_url)
    if url.get_backend_name() != "sqlite" or not url.database or url.database == ":memory:":
        yield
        return
    try:
        import fcntl
    except ImportError:  # Windows: a single process is the norm there
        yield
        return
    lock_path = Path(f"{url.database}.migrate.lock")
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    with lock_path.open("w") as lock_file:
        fcntl.flock(lock_file, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock_file, fcntl.LOCK_UN)
