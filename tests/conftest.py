"""Every test runs against a real, freshly migrated database: SQLite always, and PostgreSQL too
when TEST_DATABASE_URL is set.

Each backend is migrated once per run with `alembic upgrade head` into a template; every test then
gets its own copy (a file copy for SQLite, CREATE DATABASE ... TEMPLATE for PostgreSQL), so tests
commit for real, run concurrent requests, and still never see each other's rows.
"""

import os
import tempfile

# Set before the app module is imported: its module-level app must not write into the checkout.
os.environ["ENVIRONMENT"] = "test"
os.environ["SECRET_KEY"] = "test-secret-key-that-is-long-enough-for-hs256"
os.environ["DATA_DIR"] = tempfile.mkdtemp(prefix="quill-test-data-")
os.environ["PASSWORD_HASH_TIME_COST"] = "1"
os.environ["PASSWORD_HASH_MEMORY_COST_KIB"] = "8"
os.environ["PASSWORD_HASH_PARALLELISM"] = "1"
# Mail of tests goes to .eml files in each test's DATA_DIR, whatever SMTP a .env names; the mail
# tests bring an SMTP server of their own (tests/mail/smtp_server.py).
os.environ["MAIL_BACKEND"] = "file"

import asyncio
import compileall
import itertools
import shutil
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path

import anyio
import httpx
import pytest
from fastapi import FastAPI
from redis.asyncio import Redis
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncSession, create_async_engine

from app.core.config import Settings
from app.core.db import Database
from app.core.migrations import upgrade_to_head
from app.main import create_app
from tests.helpers import open_session
from tests.redis_server import RedisServer, require_redis_server

# On Python 3.11.7, an ast.parse in one thread while another compiles source can fail with
# "AST constructor recursion depth mismatch" (a CPython bug; it failed CI runs). Tests parse in the
# event loop's thread (the assertion rewriter imports a test's modules), and the apps migrate in a
# worker thread (Alembic loads each migration file). So nothing is left to compile mid-test: the
# migrations are compiled here, and the parts anyio imports on first use are imported now.
compileall.compile_dir(Path(__file__).resolve().parents[1] / "migrations", quiet=1)
for _name in dir(anyio):
    getattr(anyio, _name)

TEST_DATABASE_URL = os.environ.get("TEST_DATABASE_URL", "")
# With PostgreSQL, the suite runs on PostgreSQL + Redis, as production does.
TEST_REDIS_URL = os.environ.get("TEST_REDIS_URL", "")
BACKENDS = ["sqlite", "postgresql"] if TEST_DATABASE_URL else ["sqlite"]
_database_numbers = itertools.count()


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Tests marked `http_layer` (token checks, URL numbers, headers) run on SQLite alone: what
    they check is decided before any statement, and the statements they do run are run on
    PostgreSQL by the tests of their own domain. The run is shorter by their PostgreSQL copies.
    """
    on_postgresql = [
        item
        for item in items
        if item.get_closest_marker("http_layer") is not None
        and getattr(item, "callspec", None) is not None
        and item.callspec.params.get("backend") == "postgresql"  # type: ignore[attr-defined]
    ]
    if on_postgresql:
        config.hook.pytest_deselected(items=on_postgresql)
        dropped = set(on_postgresql)
        items[:] = [item for item in items if item not in dropped]


@pytest.fixture(scope="session", params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    name: str = request.param
    return name


class PostgresDatabases:
    """Creates and drops databases on the server named by TEST_DATABASE_URL.

    A test's copy of the template is made while the test before it runs, and dropped while the
    test after it runs: each copy costs the server some writing and syncing to disk, which then
    overlaps the tests instead of adding to them.
    """

    def __init__(self, url: str) -> None:
        self.url = make_url(url)
        self.prefix = f"quill_test_{uuid.uuid4().hex[:8]}"
        self.admin = create_async_engine(self.url, isolation_level="AUTOCOMMIT")
        self._next_copy: asyncio.Task[str] | None = None
        self._drops: set[asyncio.Task[None]] = set()

    async def copy_of(self, template: str) -> str:
        """A new database made from `template`: its name. The next one is begun at once."""
        ready = self._next_copy or asyncio.create_task(self._new_copy(template))
        self._next_copy = asyncio.create_task(self._new_copy(template))
        return await ready

    async def _new_copy(self, template: str) -> str:
        name = f"{self.prefix}_{next(_database_numbers)}"
        await self.create(name, template=template)
        return name

    def drop_later(self, name: str) -> None:
        task = asyncio.create_task(self.drop(name))
        self._drops.add(task)
        task.add_done_callback(self._drops.discard)

    async def settle(self) -> None:
        """Drop the copy made for no test, and wait for every drop under way."""
        if self._next_copy is not None:
            self.drop_later(await self._next_copy)
            self._next_copy = None
        await asyncio.gather(*self._drops)

    async def close(self) -> None:
        await self.settle()
        await self.admin.dispose()

    def url_for(self, name: str) -> str:
        return self.url.set(database=name).render_as_string(hide_password=False)

    async def create(self, name: str, *, template: str | None = None) -> str:
        clause = f" TEMPLATE {template}" if template else ""
        async with self.admin.connect() as connection:
            # A file copy of the small template costs the server half of what writing it all to
            # the WAL does (PostgreSQL 15's default; measured: 91 against 164 ms a copy).
            version = int(await connection.scalar(text("SHOW server_version_num")) or 0)
            if template and version >= 150000:
                clause += " STRATEGY FILE_COPY"
            await connection.exec_driver_sql(f"CREATE DATABASE {name}{clause}")
        return self.url_for(name)

    async def drop(self, name: str) -> None:
        async with self.admin.connect() as connection:
            await connection.exec_driver_sql(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


@pytest.fixture(scope="session")
async def postgres() -> AsyncIterator[PostgresDatabases | None]:
    if not TEST_DATABASE_URL:
        yield None
        return
    databases = PostgresDatabases(TEST_DATABASE_URL)
    try:
        # Set but unreachable is a failure, not a skip: CI must not pass on SQLite alone.
        async with databases.admin.connect() as connection:
            await connection.exec_driver_sql("SELECT 1")
    except Exception as exc:
        pytest.fail(f"TEST_DATABASE_URL is set but PostgreSQL cannot be reached: {exc}")
    yield databases
    await databases.close()


@pytest.fixture(scope="session")
async def template_database(
    backend: str,
    postgres: PostgresDatabases | None,
    tmp_path_factory: pytest.TempPathFactory,
) -> AsyncIterator[str]:
    """A database migrated to head with Alembic: the original every test's database copies."""
    if backend == "sqlite":
        path = tmp_path_factory.mktemp("sqlite") / "template.db"
        await anyio.to_thread.run_sync(upgrade_to_head, f"sqlite+aiosqlite:///{path}")
        yield str(path)
        return
    assert postgres is not None
    name = f"{postgres.prefix}_template"
    url = await postgres.create(name)
    await anyio.to_thread.run_sync(upgrade_to_head, url)
    yield name
    await postgres.settle()  # no copy of it is still being made
    await postgres.drop(name)


@pytest.fixture
async def database_url(
    backend: str,
    template_database: str,
    postgres: PostgresDatabases | None,
    tmp_path: Path,
) -> AsyncIterator[str]:
    """A fresh database for this test alone, already at the latest migration."""
    if backend == "sqlite":
        path = tmp_path / "quill.db"
        shutil.copyfile(template_database, path)
        yield f"sqlite+aiosqlite:///{path}"
        return
    assert postgres is not None
    name = await postgres.copy_of(template_database)
    yield postgres.url_for(name)
    postgres.drop_later(name)


@pytest.fixture(scope="session")
async def redis_url(backend: str) -> AsyncIterator[str]:
    """TEST_REDIS_URL on the PostgreSQL pass, when set; empty (no Redis) otherwise."""
    if backend != "postgresql" or not TEST_REDIS_URL:
        yield ""
        return
    client = Redis.from_url(TEST_REDIS_URL, socket_connect_timeout=2)
    try:
        # Set but unreachable is a failure, not a skip.
        await client.ping()
    except Exception as exc:
        pytest.fail(f"TEST_REDIS_URL is set but Redis cannot be reached: {exc}")
    finally:
        await client.aclose()
    yield TEST_REDIS_URL


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    """A started redis-server of this test's own, which the test may stop and start again."""
    require_redis_server()
    server = RedisServer(tmp_path)
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def redis_key_prefix() -> str:
    """A prefix of this test's own: tests share one Redis and never see each other's keys."""
    return f"quill-test:{uuid.uuid4().hex}:"


@pytest.fixture
def settings(database_url: str, redis_url: str, redis_key_prefix: str, tmp_path: Path) -> Settings:
    return Settings(
        ENVIRONMENT="test",
        DATABASE_URL=database_url,
        REDIS_URL=redis_url,
        REDIS_KEY_PREFIX=redis_key_prefix,
        # Generous: on a loaded test machine a healthy Redis can take longer than production's
        # 0.25 s. Tests of a Redis that stops answering set their own timeout.
        REDIS_SOCKET_TIMEOUT_SECONDS=2.0,
        AUTO_MIGRATE=False,
        DATA_DIR=tmp_path / "data",
        SECRET_KEY="test-secret-key-that-is-long-enough-for-hs256",
        PASSWORD_HASH_TIME_COST=1,
        PASSWORD_HASH_MEMORY_COST_KIB=8,
        PASSWORD_HASH_PARALLELISM=1,
        DB_POOL_SIZE=5,
    )


@pytest.fixture
async def app(settings: Settings) -> AsyncIterator[FastAPI]:
    application = create_app(settings)
    # httpx's ASGITransport does not run the lifespan; this does, as a server would.
    async with application.router.lifespan_context(application):
        yield application


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as http_client:
        yield http_client


@pytest.fixture
async def session(app: FastAPI) -> AsyncIterator[AsyncSession]:
    """A session of the test's own, beside the app's, for factories and for checking rows."""
    async with open_session(app.state.database) as db_session:
        yield db_session


Serve = Callable[[FastAPI], AbstractAsyncContextManager[httpx.AsyncClient]]


@asynccontextmanager
async def _serve(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            yield client


@pytest.fixture
def serve() -> Serve:
    """`async with serve(app) as client`: run the app's lifespan, then a client over it.

    For an app of the test's own making (other settings, extra routes, added before).
    """
    return _serve


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


@pytest.fixture
def postgresql_only(backend: str) -> None:
    """For what only PostgreSQL can do: two writers at once (SQLite runs one at a time)."""
    if backend != "postgresql":
        pytest.skip("SQLite runs one writer at a time: two writers cannot overlap there")
