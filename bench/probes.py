"""What processes cost, read from /proc: CPU time (user + system) and memory (RSS, peak RSS)."""

import os
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

PROC = Path("/proc")
CLOCK_TICKS_PER_SECOND = os.sysconf("SC_CLK_TCK")
IDLE_SAMPLE_SECONDS = 0.2
# Under 10% of a core over a sample, all watched processes together: idle uvicorn workers and
# PostgreSQL wake a few times a second only.
IDLE_CPU_SHARE = 0.10


def cpu_seconds(pid: int) -> float | None:
    """utime + stime of one process; None for one that has gone."""
    try:
        stat = (PROC / str(pid) / "stat").read_text()
    except OSError:
        return None
    # The command name (field 2) may hold spaces and parentheses: split after the last ")".
    fields = stat[stat.rindex(")") + 2 :].split()
    # After the name, utime and stime are fields 12 and 13 (fields 14 and 15 of the whole line).
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS_PER_SECOND


def cpu_by_pid(pids: Iterable[int]) -> dict[int, float]:
    found = {pid: cpu_seconds(pid) for pid in pids}
    return {pid: seconds for pid, seconds in found.items() if seconds is not None}


def cpu_spent(before: dict[int, float], after: dict[int, float]) -> float:
    """CPU seconds between two readings, over the processes alive at both: one that exited in
    between would otherwise count its whole life as negative time."""
    return sum(after[pid] - before[pid] for pid in before.keys() & after.keys())


def wait_until_idle(pids: Iterable[int], max_seconds: float) -> float:
    """Waits until the processes use under IDLE_CPU_SHARE of a core; returns the seconds waited.

    wrk stops at its deadline with requests still queued in the server (a login storm leaves
    seconds of argon2 work): without this the next run would pay for them.
    """
    watched = list(pids)
    started = time.monotonic()
    previous = cpu_by_pid(watched)
    while time.monotonic() - started < max_seconds:
        time.sleep(IDLE_SAMPLE_SECONDS)
        current = cpu_by_pid(watched)
        if cpu_spent(previous, current) < IDLE_CPU_SHARE * IDLE_SAMPLE_SECONDS:
            break
        previous = current
    return time.monotonic() - started


@dataclass(frozen=True)
class Memory:
    rss_mib: float
    peak_rss_mib: float


def memory(pid: int) -> Memory | None:
    """VmRSS and VmHWM (the peak RSS since the process started) of one process."""
    try:
        lines = (PROC / str(pid) / "status").read_text().splitlines()
    except OSError:
        return None
    kib = {
        name: int(value.split()[0])
        for name, _, value in (line.partition(":") for line in lines)
        if name in ("VmRSS", "VmHWM")
    }
    return Memory(rss_mib=kib.get("VmRSS", 0) / 1024, peak_rss_mib=kib.get("VmHWM", 0) / 1024)


def children(pid: int) -> list[int]:
    """The direct children of `pid` (every thread's list: a child belongs to the thread that
    forked it)."""
    found: list[int] = []
    for task in (PROC / str(pid) / "task").glob("*"):
        try:
            found.extend(int(child) for child in (task / "children").read_text().split())
        except OSError:
            continue
    return found


def parent_pid(pid: int) -> int | None:
    try:
        stat = (PROC / str(pid) / "stat").read_text()
    except OSError:
        return None
    # After the name: state, then the parent's pid.
    return int(stat[stat.rindex(")") + 2 :].split()[1])


def command_line(pid: int) -> str:
    try:
        return (PROC / str(pid) / "cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def load_average() -> tuple[float, float, float]:
    return os.getloadavg()
