"""What processes cost, read from /proc: CPU time (user + system) and memory (RSS, peak RSS)."""

import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

PROC = Path("/proc")
CLOCK_TICKS_PER_SECOND = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """utime + stime of one process; 0 for one that has gone (its time is lost, not fatal)."""
    try:
        stat = (PROC / str(pid) / "stat").read_text()
    except OSError:
        return 0.0
    # The command name (field 2) may hold spaces and parentheses: split after the last ")".
    fields = stat[stat.rindex(")") + 2 :].split()
    # After the name, utime and stime are fields 12 and 13 (fields 14 and 15 of the whole line).
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS_PER_SECOND


def total_cpu_seconds(pids: Iterable[int]) -> float:
    return sum(cpu_seconds(pid) for pid in pids)


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


def command_line(pid: int) -> str:
    try:
        return (PROC / str(pid) / "cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def pids_named(command_name: str) -> list[int]:
    """Every process whose comm is `command_name`, e.g. all of PostgreSQL's (postmaster and
    backends alike call themselves "postgres")."""
    found: list[int] = []
    for entry in PROC.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if (entry / "comm").read_text().strip() == command_name:
                found.append(int(entry.name))
        except OSError:
            continue
    return found


def load_average() -> tuple[float, float, float]:
    return os.getloadavg()
