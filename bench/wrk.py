"""wrk runs: a Lua script assembled from bench/scripts/, started, and its summary parsed."""

import json
import os
import shutil
import subprocess
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

SCRIPTS_DIR = Path(__file__).with_name("scripts")
SUMMARY_MARKER = "BENCH_SUMMARY "
# wrk's own default is 2 s; a login under a storm may wait longer than that, and a timeout
# would be counted as an error rather than as the latency it is.
TIMEOUT = "10s"
# Extra seconds past -d before a run that hangs is killed.
GRACE_SECONDS = 30


class WrkFailed(RuntimeError):
    pass


_APT_INSTALL = ["apt-get", "install", "-y", "wrk"]


def ensure_installed() -> str | None:
    """None when wrk is there; as root, installs it with apt first (updating the package lists
    only when the install alone fails). Otherwise why it is missing and how to install it."""
    if shutil.which("wrk"):
        return None
    if os.geteuid() != 0:
        return "wrk is not installed: install it with `sudo apt-get install -y wrk`"
    print("bench: installing wrk (apt-get install -y wrk)", flush=True)
    for command in (_APT_INSTALL, ["apt-get", "update"], _APT_INSTALL):
        subprocess.run(command, capture_output=True, check=False)  # noqa: S603
        if command is _APT_INSTALL and shutil.which("wrk"):
            return None
    return "wrk is not installed, and `apt-get install -y wrk` failed"


@dataclass(frozen=True)
class Load:
    """How hard wrk pushes: threads, connections and seconds."""

    threads: int
    connections: int
    seconds: float


@dataclass(frozen=True)
class WrkResult:
    requests: int
    seconds: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float
    status_errors: int
    socket_errors: int

    @property
    def requests_per_second(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0

    @property
    def errors(self) -> int:
        return self.status_errors + self.socket_errors


class WrkRun:
    """One wrk process: start() returns at once, so that two can run side by side (the login
    storm and the read measured during it); result() waits for it."""

    def __init__(
        self,
        url: str,
        scripts: Sequence[str],
        load: Load,
        environment: Mapping[str, str],
    ) -> None:
        self._url = url
        self._load = load
        self._environment = {**os.environ, **environment}
        self._script_path = _assemble(scripts)
        self._process: subprocess.Popen[str] | None = None

    def start(self) -> "WrkRun":
        command = [
            "wrk",
            "--latency",
            "--timeout",
            TIMEOUT,
            f"-t{self._load.threads}",
            f"-c{self._load.connections}",
            f"-d{max(1, round(self._load.seconds))}s",
            "-s",
            str(self._script_path),
            self._url,
        ]
        self._process = subprocess.Popen(  # noqa: S603 (our own command line)
            command,
            env=self._environment,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        return self

    def result(self) -> WrkResult:
        assert self._process is not None, "start() first"
        try:
            output, _ = self._process.communicate(timeout=self._load.seconds + GRACE_SECONDS)
        except subprocess.TimeoutExpired:
            self._process.kill()
            output, _ = self._process.communicate()
            raise WrkFailed(f"wrk on {self._url} hung; it printed:\n{output}") from None
        finally:
            self._script_path.unlink(missing_ok=True)
        if self._process.returncode != 0:
            raise WrkFailed(f"wrk on {self._url} exited {self._process.returncode}:\n{output}")
        return parse(output, self._url)


def run(url: str, scripts: Sequence[str], load: Load, environment: Mapping[str, str]) -> WrkResult:
    return WrkRun(url, scripts, load, environment).start().result()


def parse(output: str, url: str = "") -> WrkResult:
    """wrk's output, read through the JSON line of summary.lua's done()."""
    for line in output.splitlines():
        if line.startswith(SUMMARY_MARKER):
            summary = json.loads(line.removeprefix(SUMMARY_MARKER))
            break
    else:
        raise WrkFailed(f"wrk on {url} printed no summary:\n{output}")
    return WrkResult(
        requests=summary["requests"],
        seconds=summary["duration_us"] / 1e6,
        p50_ms=summary["p50_us"] / 1e3,
        p90_ms=summary["p90_us"] / 1e3,
        p99_ms=summary["p99_us"] / 1e3,
        max_ms=summary["max_us"] / 1e3,
        status_errors=summary["status_errors"],
        socket_errors=sum(
            summary[name] for name in ("connect_errors", "read_errors", "write_errors", "timeouts")
        ),
    )


def _assemble(scripts: Sequence[str]) -> Path:
    """One script file: wrk takes a single -s, and every run needs summary.lua's done()."""
    parts = [(SCRIPTS_DIR / f"{name}.lua").read_text() for name in [*scripts, "summary"]]
    handle, path = tempfile.mkstemp(prefix="bench-wrk-", suffix=".lua")
    with os.fdopen(handle, "w") as script:
        script.write("\n".join(parts))
    return Path(path)
