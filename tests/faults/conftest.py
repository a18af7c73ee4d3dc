"""The fault tests' servers: a PostgreSQL server of a test's own with a migrated database.

The redis-server of a test's own is the suite's `redis_server` fixture (tests/conftest.py).
"""

from collections.abc import Iterator
from pathlib import Path

import pytest

from app.core.migrations import upgrade_to_head
from tests.faults.postgres_server import PostgresServer, require_postgres_programs


@pytest.fixture
def postgres_server() -> Iterator[PostgresServer]:
    """A started PostgreSQL server of this test's own, which the test may stop and start."""
    server = PostgresServer(require_postgres_programs())
    try:
        server.create()
        server.start()
        yield server
    finally:
        server.remove()


@pytest.fixture
def own_database_url(postgres_server: PostgresServer) -> str:
    """Quill's database on that server, migrated to head."""
    url = postgres_server.create_database("quill")
    upgrade_to_head(url)
    return url


@pytest.fixture(scope="session")
def bytecode_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where the servers of this run keep the modules they compile (see quill.serving)."""
    return tmp_path_factory.mktemp("bytecode")
