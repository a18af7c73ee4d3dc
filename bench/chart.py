"""The PNG: throughput as a fraction of the bare ASGI ceiling, per endpoint, per configuration."""

from collections.abc import Mapping
from pathlib import Path

from bench.runner import HELLO, Row

INSTALL_HINT = "uv sync --group bench (matplotlib)"


def draw_ratios(rows: Mapping[str, list[Row]], path: Path) -> str | None:
    """Writes the chart; None when written, else why not (matplotlib missing: the run still
    counts, only the picture is skipped)."""
    try:
        import matplotlib

        matplotlib.use("Agg")  # no display: render to a file
        import matplotlib.pyplot as plt
    except ImportError:
        return f"no chart: matplotlib is not installed ({INSTALL_HINT})"
    configurations = [name for name in rows if name != HELLO]
    endpoints: list[str] = []
    for name in configurations:
        for row in rows[name]:
            if row.ratio_to_hello is not None and row.endpoint not in endpoints:
                endpoints.append(row.endpoint)
    if not endpoints:
        return "no chart: no ratio to the ceiling was measured"
    bar_height = 0.8 / max(1, len(configurations))
    figure, axes = plt.subplots(figsize=(11, 0.45 * len(endpoints) + 1.5))
    for index, name in enumerate(configurations):
        ratios = {row.endpoint: row.ratio_to_hello or 0.0 for row in rows[name]}
        positions = [slot + index * bar_height for slot in range(len(endpoints))]
        axes.barh(
            positions,
            [ratios.get(endpoint, 0.0) for endpoint in endpoints],
            height=bar_height,
            label=name,
        )
    axes.set_yticks([slot + 0.4 - bar_height / 2 for slot in range(len(endpoints))])
    axes.set_yticklabels(endpoints, fontsize=8)
    axes.invert_yaxis()
    axes.set_xlabel("req/s as a fraction of the bare ASGI hello (same uvicorn, same flags)")
    axes.legend()
    axes.grid(axis="x", alpha=0.3)
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return None
