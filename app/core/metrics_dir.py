"""Where the processes of one server keep their metric files, chosen before prometheus_client is
imported.

prometheus_client sums metrics across processes through files, one set per process, in the
directory named by PROMETHEUS_MULTIPROC_DIR, which it reads when it is imported. Quill sets that
variable itself, so `fastapi run --workers N` needs no extra environment: the workers of one
server (the children of one supervisor) share a directory, keyed by the supervisor's pid and
start time, so no other server and no earlier start of this one ever reads into it; a process
that serves alone (`fastapi run`, the tests) gets one of its own. A directory set by the operator
is used as it is. Directories left by servers that are gone are removed when a server starts.
"""

import contextlib
import multiprocessing
import os
import shutil
import tempfile
from pathlib import Path

ENVIRONMENT_VARIABLE = "PROMETHEUS_MULTIPROC_DIR"


def _user_id() -> str:
    return str(os.getuid()) if hasattr(os, "getuid") else "user"


# Per user: a directory in the shared temporary folder that another user could write into would
# let them forge this server's metrics.
ROOT = Path(tempfile.gettempdir()) / f"quill-metrics-{_user_id()}"


def process_start_time(pid: int) -> str | None:
    """When `pid` started (clock ticks since boot, from /proc), or None: gone, or no /proc.

    A pid alone can be reused by a later process; the pair names one process for good.
    """
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The second field is the command in parentheses, which may itself hold spaces; the start
    # time is the 22nd field, the 20th after it.
    return stat.rpartition(")")[2].split()[19]


def server_pid() -> int:
    """The process whose workers share one directory: the supervisor that started this process
    (uvicorn's --workers, the reloader of `fastapi dev`), or this process when it serves alone."""
    return os.getppid() if multiprocessing.parent_process() is not None else os.getpid()


def _directory_name(pid: int) -> str:
    return f"{pid}-{process_start_time(pid) or 'unknown'}"


def _is_running(directory_name: str) -> bool:
    pid, _, start_time = directory_name.partition("-")
    if not pid.isdigit() or start_time == "unknown":
        return True  # not one of ours, or no /proc to tell: leave it alone
    return process_start_time(int(pid)) == start_time


def _make_private_root() -> None:
    ROOT.mkdir(mode=0o700, exist_ok=True)
    status = ROOT.stat()
    if hasattr(os, "getuid") and (status.st_uid != os.getuid() or status.st_mode & 0o022):
        raise RuntimeError(f"{ROOT} belongs to another user or is writable by others")


def _remove_directories_of_stopped_servers() -> None:
    for directory in ROOT.iterdir():
        if directory.is_dir() and not _is_running(directory.name):
            shutil.rmtree(directory, ignore_errors=True)


def choose_directory() -> tuple[Path, bool]:
    """This process's metric directory, created and named in PROMETHEUS_MULTIPROC_DIR, and
    whether other processes write into it too."""
    configured = os.environ.get(ENVIRONMENT_VARIABLE)
    # A directory under ROOT was chosen by a Quill process this one inherited its environment
    # from (its supervisor, or a test starting a server): choose again, which gives workers
    # their supervisor's directory and a server started by another Quill process its own.
    if configured and Path(configured).parent != ROOT:
        Path(configured).mkdir(parents=True, exist_ok=True)
        return Path(configured), True
    _make_private_root()
    server = server_pid()
    directory = ROOT / _directory_name(server)
    if not directory.exists():
        # The first process of a server start sweeps; the directory of a server that still
        # runs is never removed.
        _remove_directories_of_stopped_servers()
        with contextlib.suppress(FileExistsError):
            directory.mkdir(mode=0o700)
    os.environ[ENVIRONMENT_VARIABLE] = str(directory)
    return directory, server != os.getpid()


MULTIPROCESS_DIR, SHARED_WITH_OTHER_PROCESSES = choose_directory()
