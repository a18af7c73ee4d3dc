"""Which directory a process keeps its metric files in. tests/test_server.py shows the workers
of one real server sharing one; these check the choice and the sweep in this process, on a root
of the test's own."""

import os
import stat
from pathlib import Path

import pytest

from app.core import metrics_dir
from app.core.metrics_dir import (
    ENVIRONMENT_VARIABLE,
    ROOT,
    choose_directory,
    process_start_time,
)

# Above any pid Linux hands out (pid_max is at most 2**22).
NO_SUCH_PID = 999_999_999


@pytest.fixture
def root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A root of the test's own; the process's real directory and variable are left as found."""
    test_root = tmp_path / "quill-metrics"
    monkeypatch.setattr(metrics_dir, "ROOT", test_root)
    monkeypatch.delenv(ENVIRONMENT_VARIABLE, raising=False)
    return test_root


def own_directory_name() -> str:
    return f"{os.getpid()}-{process_start_time(os.getpid())}"


@pytest.mark.usefixtures("root")
def test_an_operators_directory_is_used_as_it_is(tmp_path: Path) -> None:
    chosen = tmp_path / "set-by-the-operator"
    os.environ[ENVIRONMENT_VARIABLE] = str(chosen)

    directory, shared = choose_directory()

    assert directory == chosen
    assert chosen.is_dir()
    # Others may write into it (gunicorn's workers): this process's live gauges leave with it.
    assert shared is True
    assert os.environ[ENVIRONMENT_VARIABLE] == str(chosen)


def test_a_process_serving_alone_gets_a_private_directory_of_its_own(root: Path) -> None:
    directory, shared = choose_directory()

    assert directory == root / own_directory_name()
    assert stat.S_IMODE(directory.stat().st_mode) == 0o700
    assert stat.S_IMODE(root.stat().st_mode) == 0o700
    assert shared is False
    assert os.environ[ENVIRONMENT_VARIABLE] == str(directory)


def test_a_directory_another_quill_process_chose_is_chosen_again(root: Path) -> None:
    # Inherited from the environment of a Quill process that started this one (a test starting
    # a server, say): that process's directory, not this server's.
    os.environ[ENVIRONMENT_VARIABLE] = str(root / f"{os.getppid()}-1")

    directory, _shared = choose_directory()

    assert directory == root / own_directory_name()


def test_a_start_removes_the_directories_of_servers_that_are_gone_and_only_those(
    root: Path,
) -> None:
    root.mkdir(mode=0o700)
    gone = root / f"{NO_SUCH_PID}-5"
    # This pid, once, in an earlier process: its start time differs.
    reused_pid = root / f"{os.getpid()}-0"
    running = root / f"{os.getppid()}-{process_start_time(os.getppid())}"
    not_ours = root / "notes"
    without_proc = root / "12345-unknown"
    for directory in (gone, reused_pid, running, not_ours, without_proc):
        directory.mkdir()
        (directory / "counter_1.db").touch()

    choose_directory()

    assert not gone.exists()
    assert not reused_pid.exists()
    assert running.exists()
    assert not_ours.exists()
    assert without_proc.exists()


def test_a_root_others_may_write_into_is_refused(root: Path) -> None:
    root.mkdir()
    root.chmod(0o777)

    with pytest.raises(RuntimeError, match="writable by others"):
        choose_directory()


def test_the_real_root_belongs_to_this_user_alone() -> None:
    assert ROOT.name == f"quill-metrics-{os.getuid()}"
    assert ROOT.stat().st_uid == os.getuid()
    assert stat.S_IMODE(ROOT.stat().st_mode) == 0o700
