"""The PostgreSQL server the benchmark uses: a database of its own, created fresh and dropped."""

import asyncio
import re
from dataclasses import dataclass

import asyncpg  # type: ignore[import-untyped]  # ships no type information

from bench import probes

ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
CONNECT_TIMEOUT_SECONDS = 3.0


@dataclass(frozen=True)
class PostgresDatabase:
    name: str
    admin_url: str = ADMIN_URL

    @property
    def dsn(self) -> str:
        """For asyncpg, as the seeder connects."""
        return self.admin_url.rsplit("/", 1)[0] + "/" + self.name

    @property
    def sqlalchemy_url(self) -> str:
        """For Quill's DATABASE_URL."""
        return self.dsn.replace("postgresql://", "postgresql+asyncpg://", 1)

    def create_fresh(self) -> None:
        """Drops any database left by an interrupted run, then creates an empty one."""
        asyncio.run(self._administer(f"DROP DATABASE IF EXISTS {self.name} WITH (FORCE)"))
        asyncio.run(self._administer(f"CREATE DATABASE {self.name}"))

    def processes(self) -> list[int]:
        """The server processes that work for this database: its client backends and the
        cluster's background processes (WAL writer, checkpointer, autovacuum...), but not the
        backends of other databases, which other users of the server keep busy."""
        postmaster = asyncio.run(self._postmaster_pid())
        return [
            pid
            for pid in probes.children(postmaster)
            if _serves(probes.command_line(pid), self.name)
        ]

    async def _postmaster_pid(self) -> int:
        connection = await asyncpg.connect(self.dsn, timeout=CONNECT_TIMEOUT_SECONDS)
        try:
            backend: int = await connection.fetchval("SELECT pg_backend_pid()")
            # Read while connected: the backend exits with the connection.
            postmaster = probes.parent_pid(backend)
        finally:
            await connection.close()
        if postmaster is None:
            raise RuntimeError("PostgreSQL's backend is not visible in /proc: not on this machine?")
        return postmaster

    def drop(self) -> None:
        asyncio.run(self._administer(f"DROP DATABASE IF EXISTS {self.name} WITH (FORCE)"))

    async def _administer(self, statement: str) -> None:
        connection = await asyncpg.connect(self.admin_url, timeout=CONNECT_TIMEOUT_SECONDS)
        try:
            await connection.execute(statement)
        finally:
            await connection.close()


def unreachable_reason(admin_url: str = ADMIN_URL) -> str | None:
    """None when the server answers; else why not, to print when its configuration is skipped."""
    try:
        asyncio.run(_server_version(admin_url))
    except (OSError, asyncpg.PostgresError, TimeoutError) as exc:
        return f"PostgreSQL at {admin_url} is unreachable: {exc}"
    return None


def server_version(admin_url: str = ADMIN_URL) -> str:
    return asyncio.run(_server_version(admin_url))


async def _server_version(admin_url: str) -> str:
    connection = await asyncpg.connect(admin_url, timeout=CONNECT_TIMEOUT_SECONDS)
    try:
        version: str = await connection.fetchval("SHOW server_version")
        return version
    finally:
        await connection.close()


# A client backend's title: "postgres: 15/main: <user> <database> <host>(<port>) <state>" (or
# "[local]" for a Unix socket); background processes have no client address in theirs.
_CLIENT_BACKEND = re.compile(
    r"^postgres: .*?: (?P<user>\S+) (?P<database>\S+) (\S+\(\d+\)|\[local\])"
)


def _serves(title: str, database: str) -> bool:
    client = _CLIENT_BACKEND.match(title)
    return client is None or client["database"] == database
