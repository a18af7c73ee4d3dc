"""What the numbers were measured on: versions, the machine, its load, the git commit."""

import os
import platform
import subprocess
from importlib.metadata import version
from pathlib import Path
from typing import Any

from bench import postgres, probes
from bench.servers import WORKERS


def describe(repo_root: Path, postgres_reachable: bool) -> dict[str, Any]:
    return {
        "python": platform.python_version(),
        "uvicorn": version("uvicorn"),
        "fastapi": version("fastapi"),
        "sqlalchemy": version("sqlalchemy"),
        "postgresql_server": postgres.server_version() if postgres_reachable else None,
        "wrk": _wrk_version(),
        "workers_per_server": WORKERS,
        "cpu_count": os.cpu_count(),
        "git_commit": _git_commit(repo_root),
        "load_average_at_start": probes.load_average(),
    }


def _git_commit(repo_root: Path) -> str | None:
    completed = subprocess.run(
        ["git", "rev-parse", "HEAD"],  # noqa: S607 (git from PATH, as a developer runs it)
        cwd=repo_root,
        capture_output=True,
        text=True,
        check=False,
    )
    return completed.stdout.strip() or None


def _wrk_version() -> str | None:
    # `wrk -v` prints its version and usage, and exits 1.
    completed = subprocess.run(["wrk", "-v"], capture_output=True, text=True, check=False)  # noqa: S607
    first_line = (completed.stdout or completed.stderr).splitlines()
    return first_line[0] if first_line else None
