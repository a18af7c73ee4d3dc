"""Quill as people run it: `fastapi run` in a process of its own, on a port of its own."""

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

PROJECT_ROOT = Path(__file__).resolve().parents[1]
# What the test process's own environment must not lend the server: the test sets its own.
_TEST_ONLY_VARIABLES = {"SECRET_KEY", "DATA_DIR", "DATABASE_URL", "ENVIRONMENT", "REDIS_URL"}


@dataclass(frozen=True)
class QuillProcess:
    url: str
    log: Path
    # The supervisor: `fastapi run` itself, which starts (and restarts) the workers.
    process: "subprocess.Popen[bytes]"

    @property
    def pid(self) -> int:
        return self.process.pid


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


@contextmanager
def running_quill(
    workdir: Path,
    settings: Mapping[str, str],
    *,
    workers: int = 1,
    started: Callable[[Path], bool] = lambda _log: True,
) -> Iterator[QuillProcess]:
    """Serve Quill from `workdir` with these settings (environment variables) until the block ends.

    The block begins once /health answers and `started(log)` holds (all workers up, say).

    Its output goes to a file, not a pipe: nothing reads a pipe while tests run, and a full one
    stalls the server.
    """
    workdir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    environment = {
        key: value for key, value in os.environ.items() if key not in _TEST_ONLY_VARIABLES
    }
    environment.update({"DATA_DIR": str(workdir / "data"), "PYTHONPATH": str(PROJECT_ROOT)})
    environment.update(settings)
    log_path = workdir / "server.log"
    fastapi_cli = Path(sys.executable).parent / "fastapi"
    with log_path.open("wb") as output:
        process = subprocess.Popen(  # noqa: S603 - our own CLI with fixed arguments
            [
                str(fastapi_cli),
                "run",
                str(PROJECT_ROOT / "app" / "main.py"),
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--workers",
                str(workers),
            ],
            cwd=workdir,
            env=environment,
            stdout=output,
            stderr=subprocess.STDOUT,
        )
        url = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 60
            while not (answers_health(url) and started(log_path)):
                if process.poll() is not None:
                    pytest.fail(f"the server exited at start-up:\n{log_path.read_text()}")
                if time.monotonic() > deadline:
                    pytest.fail(f"the server did not answer within 60 s:\n{log_path.read_text()}")
                time.sleep(0.2)
            yield QuillProcess(url=url, log=log_path, process=process)
        finally:
            process.terminate()
            process.wait(timeout=30)


def log_entries(log: Path) -> list[dict[str, Any]]:
    """The server's structured lines so far (LOG_JSON): not uvicorn's own, nor a line still
    being written."""
    *complete_lines, _rest = log.read_text(errors="replace").split("\n")
    return [json.loads(line) for line in complete_lines if line.startswith("{")]


def started_workers(log: Path) -> set[int]:
    """The pids of the workers that have logged their start (LOG_JSON)."""
    return {entry["pid"] for entry in log_entries(log) if entry["event"] == "quill.started"}


def start_up(workdir: Path, settings: Mapping[str, str]) -> "subprocess.CompletedProcess[str]":
    """Import the app in a fresh process with only these settings (and PATH, PYTHONPATH): what
    start-up alone does with them, whatever the suite's own environment holds."""
    environment = {
        "PATH": os.environ.get("PATH", ""),
        "PYTHONPATH": str(PROJECT_ROOT),
        **settings,
    }
    return subprocess.run(
        [sys.executable, "-c", "import app.main"],
        cwd=workdir,
        env=environment,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
