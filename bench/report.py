"""The results as a person and a program read them: a table per configuration on stdout, and
JSON files."""

import dataclasses
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from bench.runner import Row

_COLUMNS = (
    ("endpoint", 46),
    ("req/s", 9),
    ("ratio", 6),
    ("p50 ms", 8),
    ("p99 ms", 8),
    ("errors", 7),
    ("cpu ms/req", 10),
    ("pg ms/req", 9),
)


def table(configuration: str, rows: list[Row]) -> str:
    header = "  ".join(
        title.ljust(width) if index == 0 else title.rjust(width)
        for index, (title, width) in enumerate(_COLUMNS)
    )
    lines = [f"== {configuration} ==", header, "-" * len(header)]
    for row in rows:
        endpoint = row.endpoint
        if row.offered_requests_per_second is not None:
            endpoint += f" (offered {row.offered_requests_per_second:.0f}/s)"
        cells = (
            endpoint,
            _requests_per_second(row.requests_per_second),
            _optional(row.ratio_to_hello, "{:.2f}"),
            f"{row.p50_ms:.2f}",
            f"{row.p99_ms:.2f}",
            str(row.errors),
            _optional(row.worker_cpu_ms_per_request, "{:.3f}"),
            _optional(row.postgres_cpu_ms_per_request, "{:.3f}"),
        )
        lines.append(
            "  ".join(
                cell.ljust(width) if index == 0 else cell.rjust(width)
                for index, (cell, (_, width)) in enumerate(zip(cells, _COLUMNS, strict=True))
            )
        )
    return "\n".join(lines)


def write_json(document: Mapping[str, Any], paths: list[Path]) -> None:
    text = json.dumps(document, indent=2, default=_encode)
    for path in paths:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text + "\n")


def rows_as_json(rows: Mapping[str, list[Row]]) -> dict[str, list[dict[str, Any]]]:
    return {name: [dataclasses.asdict(row) for row in found] for name, found in rows.items()}


def _requests_per_second(value: float) -> str:
    # Tenths where whole numbers would round a 1M-post list page (0.6/s) to nothing.
    return f"{value:.1f}" if value < 100 else f"{value:.0f}"


def _optional(value: float | None, template: str) -> str:
    return "-" if value is None else template.format(value)


def _encode(value: object) -> object:
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"not JSON: {value!r}")


def growth_table(small: int, small_rows: list[Row], large: int, large_rows: list[Row]) -> str:
    """Each endpoint at both sizes, and the large size's throughput and p99 over the small's."""
    large_by_name = {row.endpoint: row for row in large_rows}
    header = (
        f"{'endpoint':<28}{f'req/s {small}':>16}{f'req/s {large}':>18}{'ratio':>8}"
        f"{f'p99 ms {small}':>17}{f'p99 ms {large}':>19}{'ratio':>8}"
    )
    lines = [f"== growth: {small} -> {large} posts ==", header, "-" * len(header)]
    for row in small_rows:
        other = large_by_name.get(row.endpoint)
        if other is None:
            continue
        rps_ratio = (
            other.requests_per_second / row.requests_per_second if row.requests_per_second else 0
        )
        p99_ratio = other.p99_ms / row.p99_ms if row.p99_ms else 0
        lines.append(
            f"{row.endpoint:<28}{_requests_per_second(row.requests_per_second):>16}"
            f"{_requests_per_second(other.requests_per_second):>18}"
            f"{rps_ratio:>8.3f}{row.p99_ms:>17.2f}{other.p99_ms:>19.2f}{p99_ratio:>8.3f}"
        )
    return "\n".join(lines)


def memory_lines(
    rss_after_round: Mapping[str, Mapping[str, list[list[float]]]],
    peak_rss_per_worker: Mapping[str, Mapping[str, list[float]]],
) -> str:
    """Per server: each worker's RSS after each round (flat or growing), and its peak."""
    lines = ["== memory per worker (MiB) =="]
    for configuration, by_server in rss_after_round.items():
        for server, rounds in by_server.items():
            after = " | ".join(", ".join(f"{rss:.0f}" for rss in workers) for workers in rounds)
            peaks = peak_rss_per_worker.get(configuration, {}).get(server, [])
            peak = ", ".join(f"{rss:.0f}" for rss in peaks)
            lines.append(f"{configuration} ({server}): RSS after each round {after}; peak {peak}")
    return "\n".join(lines)
