#!/usr/bin/env python3
"""Run Quill from a fresh checkout with nothing but Python 3.11+.

    python3 run.py serve     the service on http://127.0.0.1:8000 (embedded SQLite by default)
    python3 run.py test      the whole test suite, and the coverage floor of app/ (pyproject.toml)
    python3 run.py check     ruff (lint and format), mypy --strict and the import contracts
    python3 run.py bench     the benchmark (bench/; `--quick` for a smoke run, `--help` for more)
    python3 run.py alembic upgrade head                     migrate (any Alembic command)
    python3 run.py manage create-superuser --username ...   a management command (app/cli.py)

The first run installs uv (pinned) into .tools/ and the locked dependencies into .venv/; later runs
only check that both are current. Anything after the command goes to the program it runs, e.g.
`python3 run.py serve --workers 4` or `python3 run.py test -k posts --no-cov` (part of the suite
cannot reach the floor).
"""

import os
import shutil
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
TOOLS_DIR = ROOT / ".tools"
UV_VERSION = "0.13.9"
BIN = "Scripts" if os.name == "nt" else "bin"
EXE = ".exe" if os.name == "nt" else ""


def uv() -> str:
    """A pinned uv of our own: system Pythons often refuse `pip install` outside a venv."""
    uv_path = TOOLS_DIR / BIN / f"uv{EXE}"
    marker = TOOLS_DIR / f"uv-{UV_VERSION}"
    if marker.exists():
        return str(uv_path)
    print(f"run.py: installing uv {UV_VERSION} into {TOOLS_DIR.name}/ (once)", flush=True)
    try:
        venv.create(TOOLS_DIR, with_pip=True, clear=True)
        pip = [str(TOOLS_DIR / BIN / f"python{EXE}"), "-m", "pip"]
        subprocess.run(
            [*pip, "install", "--quiet", "--disable-pip-version-check", f"uv=={UV_VERSION}"],
            check=True,
        )
    except (subprocess.CalledProcessError, OSError) as exc:
        # Debian and Ubuntu ship venv's pip separately (python3-venv); a uv already installed
        # will do as well as ours.
        found = shutil.which("uv")
        if found:
            print(f"run.py: could not install uv ({exc}); using {found}", flush=True)
            return found
        raise SystemExit(
            "run.py: could not create a virtual environment with pip "
            f"({exc}). Install your system's venv package (Debian/Ubuntu: "
            "`apt install python3-venv`) or uv (https://docs.astral.sh/uv/), then run again."
        ) from exc
    marker.touch()
    return str(uv_path)


def sync(uv_path: str, *groups: str) -> None:
    """Install exactly what uv.lock says into .venv (fast when nothing changed), with the
    dependency `groups` beyond the default ones."""
    chosen = [argument for group in groups for argument in ("--group", group)]
    subprocess.run(
        [uv_path, "sync", "--frozen", "--quiet", *chosen, "--python", sys.executable],
        check=True,
        cwd=ROOT,
    )


def run(uv_path: str, *command: str) -> int:
    return subprocess.run([uv_path, "run", "--frozen", "--no-sync", *command], cwd=ROOT).returncode


def main(argv: list[str]) -> int:
    if sys.version_info < (3, 11):
        print("Quill needs Python 3.11 or newer.", file=sys.stderr)
        return 2
    if not argv or argv[0] not in {"serve", "test", "check", "bench", "alembic", "manage"}:
        print(__doc__, file=sys.stderr)
        return 2
    command, extra = argv[0], argv[1:]
    uv_path = uv()
    # The benchmark draws its chart with matplotlib, which nothing else needs.
    sync(uv_path, *(["bench"] if command == "bench" else []))
    if command == "serve":
        return run(uv_path, "fastapi", "run", "--host", "127.0.0.1", "--port", "8000", *extra)
    if command == "test":
        # Not a bare --cov: it would take the next argument (a test path) for its source. One
        # test process per CPU (pytest-xdist); `-n 0` after it runs them all in this one. A
        # process that runs out of tests takes some of another's, so none finishes long alone.
        return run(uv_path, "pytest", "--cov=app", "-n", "auto", "--dist", "worksteal", *extra)
    if command == "bench":
        return run(uv_path, "python", "-m", "bench", *extra)
    if command == "alembic":
        return run(uv_path, "alembic", *extra)
    if command == "manage":
        return run(uv_path, "python", "-m", "app.cli", *extra)
    for step in (
        ("ruff", "check", "."),
        ("ruff", "format", "--check", "."),
        ("mypy",),
        # The architecture's contracts, in pyproject.toml; the graph is rebuilt in under a second.
        ("lint-imports", "--no-cache", "--no-logo"),
    ):
        code = run(uv_path, *step)
        if code:
            return code
    return 0


if __name__ == "__main__":
    try:
        raise SystemExit(main(sys.argv[1:]))
    except KeyboardInterrupt:
        raise SystemExit(130) from None
