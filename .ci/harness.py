"""What the CI steps that serve Quill share (.ci/fuzz.py, .ci/realworld.py): a PostgreSQL database
of their own, Quill started with `fastapi run` on a free loopback port, and commands run quietly.
"""

import asyncio
import os
import secrets
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import create_async_engine

ROOT = Path(__file__).resolve().parents[1]
VENV_BIN = Path(sys.executable).parent
STARTUP_TIMEOUT_SECONDS = 60
DEFAULT_POSTGRES_URL = os.environ.get(
    "TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)


class SetupError(Exception):
    """A step could not prepare its run: nothing was tested."""


class StepLog:
    """`.ci/<step> [  12s] message` lines, flushed at once."""

    def __init__(self, step: str) -> None:
        self.step = step
        self.started = time.monotonic()

    def __call__(self, message: str) -> None:
        print(f".ci/{self.step} [{time.monotonic() - self.started:4.0f}s] {message}", flush=True)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


async def _administer(server: URL, statement: str) -> None:
    engine = create_async_engine(server, isolation_level="AUTOCOMMIT")
    try:
        async with engine.connect() as connection:
            await connection.exec_driver_sql(statement)
    finally:
        await engine.dispose()


@contextmanager
def postgres_database(server_url: str, name_prefix: str) -> Iterator[str]:
    """A new, empty database on `server_url`'s server: its URL. Dropped on the way out."""
    server = make_url(server_url).set(drivername="postgresql+asyncpg")
    name = f"{name_prefix}_{secrets.token_hex(4)}"
    try:
        asyncio.run(_administer(server, f"CREATE DATABASE {name}"))
    except (OSError, SQLAlchemyError) as exc:
        raise SetupError(f"cannot create a database on {server!r}: {exc}") from exc
    try:
        yield server.set(database=name).render_as_string(hide_password=False)
    finally:
        asyncio.run(_administer(server, f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))


def run_quietly(command: list[str], environment: dict[str, str], stdin: str = "") -> str:
    completed = subprocess.run(
        command, cwd=ROOT, env=environment, input=stdin, capture_output=True, text=True, check=False
    )
    if completed.returncode:
        raise SetupError(
            f"`{' '.join(command[1:])}` failed ({completed.returncode}):\n"
            f"{completed.stdout}{completed.stderr}"
        )
    return completed.stdout


@contextmanager
def quill_server(
    environment: dict[str, str], log_path: Path
) -> Iterator[tuple[str, Callable[[], None]]]:
    """`fastapi run` on a free loopback port: its base URL, and a function that waits until it
    answers /health. Stopped on the way out."""
    port = free_port()
    base_url = f"http://127.0.0.1:{port}"
    command = [str(VENV_BIN / "fastapi"), "run", "--host", "127.0.0.1", "--port", str(port)]
    # A file, not a pipe: nobody reads a pipe while the step runs, and a full one stalls.
    with log_path.open("wb") as output:
        process = subprocess.Popen(
            command, cwd=ROOT, env=environment, stdout=output, stderr=subprocess.STDOUT
        )
        try:
            yield base_url, lambda: wait_for_health(process, base_url)
        finally:
            process.terminate()
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def wait_for_health(process: subprocess.Popen[bytes], base_url: str) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SetupError(f"the server exited at start-up ({process.returncode})")
        try:
            if httpx.get(f"{base_url}/health", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise SetupError(f"the server did not answer /health within {STARTUP_TIMEOUT_SECONDS}s")
