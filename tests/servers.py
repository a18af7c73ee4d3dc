"""Quill as people run it, for tests whose subject is the running server: `fastapi run` in a
process of its own, on a free port, in a folder of its own (a fresh SQLite database)."""

import contextlib
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

PROJECT_ROOT = Path(__file__).resolve().parents[1]
START_SECONDS = 60


@dataclass(frozen=True)
class RunningServer:
    url: str
    log: Path


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def answers_health(url: str) -> bool:
    try:
        return httpx.get(f"{url}/health", timeout=1).status_code == 200
    except httpx.TransportError:
        return False


@contextlib.contextmanager
def running_server(workdir: Path, **environment: str) -> Iterator[RunningServer]:
    """One worker, started from nothing (no data folder, no secret), until the block ends."""
    inherited = {
        key: value
        for key, value in os.environ.items()
        if key not in {"SECRET_KEY", "DATA_DIR", "DATABASE_URL", "ENVIRONMENT"}
    }
    port = free_port()
    log = workdir / "server.log"
    with log.open("wb") as output:
        process = subprocess.Popen(  # noqa: S603 - our own CLI with fixed arguments
            [
                str(Path(sys.executable).parent / "fastapi"),
                "run",
                str(PROJECT_ROOT / "app" / "main.py"),
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
            ],
            cwd=workdir,
            env={
                **inherited,
                "DATA_DIR": str(workdir / "data"),
                "PYTHONPATH": str(PROJECT_ROOT),
                **environment,
            },
            # A file, not a pipe: nothing reads a pipe while tests run, and a full one stalls it.
            stdout=output,
            stderr=subprocess.STDOUT,
        )
        try:
            url = f"http://127.0.0.1:{port}"
            deadline = time.monotonic() + START_SECONDS
            while not answers_health(url):
                if process.poll() is not None:
                    pytest.fail(f"the server exited at start-up:\n{log.read_text()}")
                if time.monotonic() > deadline:
                    pytest.fail(
                        f"the server did not start in {START_SECONDS} s:\n{log.read_text()}"
                    )
                time.sleep(0.2)
            yield RunningServer(url=url, log=log)
        finally:
            process.terminate()
            process.wait(timeout=30)
