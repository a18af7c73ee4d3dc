"""uvicorn servers on loopback: started with the same flags for every app, their workers found,
and stopped."""

import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from bench import probes

WORKERS = 2
# The same server and flags for the ceiling and for Quill, so that only the app differs.
UVICORN_FLAGS = (
    "--workers",
    str(WORKERS),
    "--loop",
    "uvloop",
    "--http",
    "httptools",
    "--no-access-log",
    "--log-level",
    "warning",
)
START_TIMEOUT_SECONDS = 60.0
STOP_TIMEOUT_SECONDS = 15.0


class ServerFailedToStart(RuntimeError):
    pass


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@dataclass
class Server:
    """One uvicorn master and its workers."""

    name: str
    app: str
    environment: Mapping[str, str]
    log_path: Path
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, cwd: Path) -> None:
        self.launch(cwd)
        self.wait_until_serving()

    def launch(self, cwd: Path) -> None:
        """Starts the process and returns at once: several servers boot side by side."""
        command = [sys.executable, "-m", "uvicorn", self.app, "--host", "127.0.0.1"]
        command += ["--port", str(self.port), *UVICORN_FLAGS]
        with self.log_path.open("wb") as log:
            self.process = subprocess.Popen(  # noqa: S603 (our own command line)
                command, cwd=cwd, env=dict(self.environment), stdout=log, stderr=subprocess.STDOUT
            )

    def worker_pids(self) -> list[int]:
        """The worker processes: children of the master that run multiprocessing's spawn_main
        (the master also has a resource tracker child, which serves no request)."""
        if self.process is None:
            return []
        return [
            pid
            for pid in probes.children(self.process.pid)
            if "spawn_main" in probes.command_line(pid)
        ]

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(STOP_TIMEOUT_SECONDS)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    def wait_until_serving(self) -> None:
        assert self.process is not None
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise ServerFailedToStart(
                    self._failure("exited with " + str(self.process.returncode))
                )
            if len(self.worker_pids()) == WORKERS and self._answers_health():
                return
            time.sleep(0.2)
        self.stop()
        raise ServerFailedToStart(self._failure(f"not serving after {START_TIMEOUT_SECONDS:.0f} s"))

    def _answers_health(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.base_url}/health", timeout=2) as response:  # noqa: S310
                return bool(response.status == 200)
        except (urllib.error.URLError, OSError):
            return False

    def _failure(self, reason: str) -> str:
        tail = self.log_path.read_text(errors="replace")[-2000:]
        return f"server {self.name} ({self.app}) {reason}; its log ends:\n{tail}"
