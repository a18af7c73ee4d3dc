"""A PostgreSQL server of a test's own: its own data folder, port and socket folder, so stopping
it touches nothing else. fsync is off: the tests need a server that stops and starts, not one
that survives a power cut, and every restart here is a clean one."""

import asyncio
import glob
import os
import pwd
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest
from sqlalchemy.engine import URL
from sqlalchemy.ext.asyncio import create_async_engine

from tests.quill_process import free_port

# PostgreSQL refuses to run as root; as root, the server runs as this account.
SERVER_ACCOUNT = "postgres"
# Debian keeps the server programs off PATH, one folder per major version.
_DEBIAN_PROGRAMS = "/usr/lib/postgresql/*/bin"


def _major_version(folder: str) -> int:
    version = Path(folder).parent.name
    return int(version) if version.isdigit() else 0


def postgres_programs() -> Path | None:
    """The folder of initdb and pg_ctl: on PATH, else Debian's newest."""
    on_path = shutil.which("pg_ctl")
    if on_path and shutil.which("initdb"):
        return Path(on_path).parent
    folders = [folder for folder in glob.glob(_DEBIAN_PROGRAMS) if Path(folder, "initdb").exists()]
    return Path(max(folders, key=_major_version)) if folders else None


def _has_server_account() -> bool:
    try:
        pwd.getpwnam(SERVER_ACCOUNT)
    except KeyError:
        return False
    return True


def require_postgres_programs() -> Path:
    """Skip where initdb and pg_ctl are missing (a user's machine), or where they would run as
    root without a `postgres` account to run as; under CI=true, fail instead."""
    programs = postgres_programs()
    if programs is None:
        missing = "initdb and pg_ctl are not installed (apt install postgresql)"
    elif os.geteuid() == 0 and not _has_server_account():
        missing = f"PostgreSQL will not run as root, and there is no {SERVER_ACCOUNT} account"
    else:
        return programs
    if os.environ.get("CI") == "true":
        pytest.fail(f"{missing}, and CI=true requires it")
    pytest.skip(missing)


class PostgresServer:
    """One cluster in a temporary folder, created by `create()`, removed by `remove()`."""

    def __init__(self, programs: Path) -> None:
        self.programs = programs
        self.port = free_port()
        # Not under pytest's tmp_path: that is private to root, and the server may run as
        # SERVER_ACCOUNT.
        self.directory = Path(tempfile.mkdtemp(prefix="quill-faults-postgres-"))
        self.data = self.directory / "data"
        self.log = self.directory / "server.log"
        self._account = pwd.getpwnam(SERVER_ACCOUNT) if os.geteuid() == 0 else None
        if self._account is not None:
            os.chown(self.directory, self._account.pw_uid, self._account.pw_gid)

    def url(self, database: str = "postgres") -> str:
        return URL.create(
            "postgresql+asyncpg",
            username="postgres",
            host="127.0.0.1",
            port=self.port,
            database=database,
        ).render_as_string(hide_password=False)

    def create(self) -> None:
        self._run(
            "initdb",
            "--pgdata",
            str(self.data),
            "--username",
            "postgres",
            "--auth",
            "trust",
            "--encoding",
            "UTF8",
            "--no-sync",
        )

    def start(self) -> None:
        """Start it and wait until it accepts connections."""
        options = (
            f"-c port={self.port} -c listen_addresses=127.0.0.1"
            f" -c unix_socket_directories={self.directory} -c fsync=off"
        )
        self._run(
            "pg_ctl", "start", "--wait", "-D", str(self.data), "-l", str(self.log), "-o", options
        )

    def stop(self) -> None:
        """Stop it as an operator's restart does: "fast", every session ended, work rolled back."""
        self._run("pg_ctl", "stop", "--wait", "-D", str(self.data), "--mode", "fast")

    def is_running(self) -> bool:
        status = subprocess.run(  # noqa: S603 - a fixed program and arguments
            [str(self.programs / "pg_ctl"), "status", "-D", str(self.data)],
            user=self._account.pw_uid if self._account else None,
            capture_output=True,
            check=False,
        )
        return status.returncode == 0

    def remove(self) -> None:
        if self.data.exists() and self.is_running():
            self._run("pg_ctl", "stop", "--wait", "-D", str(self.data), "--mode", "immediate")
        shutil.rmtree(self.directory, ignore_errors=True)

    def create_database(self, name: str) -> str:
        """A new, empty database on this server: its URL."""
        asyncio.run(self._administer(f"CREATE DATABASE {name}"))
        return self.url(name)

    async def _administer(self, statement: str) -> None:
        engine = create_async_engine(self.url(), isolation_level="AUTOCOMMIT")
        try:
            async with engine.connect() as connection:
                await connection.exec_driver_sql(statement)
        finally:
            await engine.dispose()

    def _run(self, program: str, *arguments: str) -> None:
        completed = subprocess.run(  # noqa: S603 - PostgreSQL's own programs, fixed arguments
            [str(self.programs / program), *arguments],
            user=self._account.pw_uid if self._account else None,
            cwd=self.directory,
            capture_output=True,
            text=True,
            check=False,
        )
        if completed.returncode:
            log = self.log.read_text(errors="replace") if self.log.exists() else ""
            raise RuntimeError(
                f"{program} {arguments[0]} failed ({completed.returncode}):\n"
                f"{completed.stdout}{completed.stderr}\n{log}"
            )
