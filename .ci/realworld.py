"""The RealWorld step of CI: the official Conduit suite against Quill, on SQLite and on PostgreSQL.

    .venv/bin/python .ci/realworld.py        (.ci/run does this after the fuzz step)

For each database, at once: Quill is started with `fastapi run` on a free loopback port with its
default settings (rate limits included: a frontend's ordinary traffic must not trip them), on a
SQLite file of its own, or on a new PostgreSQL database with Redis under a key prefix of its own;
then `run-suite.sh` (../shared/realworld, from the RealWorld project) runs the Bruno collection
against it. Every request must pass on both.

Settings, from the environment:
    REALWORLD_SUITE         the suite's runner (default ../shared/realworld/run-suite.sh)
    REALWORLD_POSTGRES_URL  a server on which this may create and drop a database (default
                            TEST_DATABASE_URL, else postgresql://postgres@127.0.0.1:5432/postgres)
    REALWORLD_REDIS_URL     the Redis of the PostgreSQL run (default TEST_REDIS_URL, else
                            redis://127.0.0.1:6379/0; empty: none)

Exit status: 0 when both runs passed every request, else 1 (the failed requests and the server's
log are printed).
"""

import os
import secrets
import signal
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from types import FrameType

from harness import (
    DEFAULT_POSTGRES_URL,
    ROOT,
    SetupError,
    StepLog,
    postgres_database,
    quill_server,
    run_quietly,
)

SUITE = Path(os.environ.get("REALWORLD_SUITE", ROOT.parent / "shared/realworld/run-suite.sh"))
POSTGRES_URL = os.environ.get("REALWORLD_POSTGRES_URL") or DEFAULT_POSTGRES_URL
REDIS_URL = os.environ.get(
    "REALWORLD_REDIS_URL", os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
)
# What the server inherits: enough to run, nothing that would change a setting of Quill's.
INHERITED = ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR")
SUITE_TIMEOUT_SECONDS = 600
BACKENDS = ("sqlite", "postgresql")

log = StepLog("realworld")


@dataclass
class Outcome:
    backend: str
    passed: bool = False
    report: str = ""


def default_environment(**settings: str) -> dict[str, str]:
    environment = {key: os.environ[key] for key in INHERITED if key in os.environ}
    return {**environment, **settings}


def run_suite(base_url: str) -> tuple[int, str]:
    """The suite's exit status and what it printed (the failed requests, the counts)."""
    try:
        completed = subprocess.run(
            [str(SUITE)],
            env={**os.environ, "HOST": base_url},
            capture_output=True,
            text=True,
            timeout=SUITE_TIMEOUT_SECONDS,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return 1, f"the suite did not finish within {SUITE_TIMEOUT_SECONDS}s"
    return completed.returncode, completed.stdout + completed.stderr


def serve(backend: str, workdir: Path, stack: ExitStack) -> str:
    """Quill on `backend`, with its default settings otherwise, until `stack` closes: its URL."""
    settings = {"DATA_DIR": str(workdir / f"{backend}-data")}
    if backend == "postgresql":
        settings["DATABASE_URL"] = stack.enter_context(
            postgres_database(POSTGRES_URL, "quill_realworld")
        )
        if REDIS_URL:
            settings["REDIS_URL"] = REDIS_URL
            settings["REDIS_KEY_PREFIX"] = f"quill-realworld:{secrets.token_hex(8)}:"
    environment = default_environment(**settings)
    if backend == "postgresql":
        # As a deployment does: PostgreSQL is migrated before the servers start (SQLite on start).
        run_quietly([sys.executable, "-m", "alembic", "upgrade", "head"], environment)
    base_url, wait_until_up = stack.enter_context(
        quill_server(environment, server_log(workdir, backend))
    )
    wait_until_up()
    log(f"{backend}: Quill answers on {base_url}")
    return base_url


def server_log(workdir: Path, backend: str) -> Path:
    return workdir / f"{backend}-server.log"


def main() -> int:
    # CI stops a job with SIGTERM: unwind, so the servers stop and the database is dropped.
    def stop(signum: int, frame: FrameType | None) -> None:
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, stop)
    if not SUITE.exists():
        log(f"the suite is not at {SUITE} (set REALWORLD_SUITE)")
        return 1
    outcomes = [Outcome(backend) for backend in BACKENDS]
    with tempfile.TemporaryDirectory(prefix="quill-realworld-") as directory:
        workdir = Path(directory)
        # The servers belong to this thread, so a stop unwinds them; the two suites run at once.
        with ExitStack() as stack:
            try:
                urls = [serve(outcome.backend, workdir, stack) for outcome in outcomes]
            except SetupError as exc:
                for outcome in outcomes:
                    outcome.report = f"setting up failed: {exc}"
                urls = []
            with ThreadPoolExecutor(max_workers=len(urls) or 1) as pool:
                results = list(pool.map(run_suite, urls))
            for outcome, (status, report) in zip(outcomes, results, strict=False):
                outcome.passed, outcome.report = status == 0, report
        for outcome in outcomes:
            log_file = server_log(workdir, outcome.backend)
            if not outcome.passed and log_file.exists():
                tail = log_file.read_text(errors="replace")[-20_000:]
                outcome.report += f"\nthe server log:\n{tail}"
    for outcome in outcomes:
        log(f"{outcome.backend}: {'passed' if outcome.passed else 'FAILED'}")
        sys.stdout.write(outcome.report.rstrip() + "\n")
    return 0 if all(outcome.passed for outcome in outcomes) else 1


if __name__ == "__main__":
    raise SystemExit(main())
