"""Quill's benchmark harness: `python -m bench` from the repository root (`--help`).

    python -m bench              the full run: PostgreSQL + Redis and SQLite, 3 rounds of 10 s
    python -m bench --quick      the smoke run for CI: a small seed, 1 round of 1 s, ~1 minute;
                                 exits non-zero when a server fails to start, wrk fails, or any
                                 endpoint answers with errors; results go to a temp folder
    python -m bench --growth     list, post by id and feed, uncached, at 10k and at 1M posts
                                 (PostgreSQL; results in results/growth-latest.json)
    python -m bench --rounds 1 --duration 5 --posts 20000    a shorter full run

What runs: every server is uvicorn with --workers 2 --loop uvloop --http httptools
--no-access-log --log-level warning on a free loopback port: a bare ASGI "hello" (bench/hello.py,
the ceiling), and for each configuration two Quill servers on the same data, one with the
response cache (Redis) and one with it off (the "cache off" rows). PostgreSQL gets a database of
its own (quill_bench, dropped at the end) and Redis database 15. SQLite is the embedded default:
a file in a temp folder and no Redis, so its cache is off and one server serves both kinds of
rows. A configuration whose PostgreSQL or Redis is unreachable is skipped, with
the reason printed. Quill runs with ENVIRONMENT=production, its rate limits raised (not off) and
mail written to files.

The data set (bench/dataset.py) is seeded straight into the tables after `alembic upgrade head`:
2000 users, 100k posts (--posts) with 3 tags each, a comment per two posts, a favorite per post,
20 follows per user; everyone's password is the benchmark user's, hashed once with Quill's own
argon2 parameters.

The rounds are interleaved: for each round, for each endpoint, for each configuration, one wrk
run (-t2 -c64; login -c16 and at least 3 s, argon2 being slow), so that a slow moment of the
machine spreads over all of them. Before each run the harness waits for the servers and
PostgreSQL to go idle (what the last run left queued is not paid for by the next), and a few
requests warm every GET up before round 1. Each number in the tables is the median over the
rounds (errors are summed):

    req/s        requests completed per second
    ratio        req/s over the hello ceiling's median req/s: 1.0 would be free
    p50/p99 ms   wrk's latency percentiles (from its own histogram, printed by a Lua done())
    errors       responses with status >= 400, plus socket errors and timeouts
    cpu ms/req   CPU time (user + system, /proc/<pid>/stat) of the server's two workers during
                 the run, per completed request (work still in flight when wrk stops counts too,
                 so short runs overstate slow endpoints a little)
    pg ms/req    the same for PostgreSQL: the backends of the benchmark's database and the
                 cluster's background processes (WAL writer, checkpointer, autovacuum), not the
                 backends of other databases on the same server

The login storm runs logins (argon2, CPU-bound) at full speed beside a cached read and a /health
probe (one connection, a request every 20 ms) on the same server: its rows are the read's
throughput and the probe's p99 during the storm. The "@ half load" rows offer half the measured
median throughput and report p99 there. wrk has no rate option, so each connection waits
connections/rate seconds after each response (Lua delay()): a closed-loop approximation, which
offers less when the server slows down, and so understates the latency an open-loop client
would see under the same rate (coordinated omission).

Caveats: wrk runs on the same 2 cores as the servers and PostgreSQL (about a core at -t2), so
every number, the ceiling's too, is lower than on a machine of its own. The JSON (results/) also
holds the RSS of each worker after each round (growth or none), the peak RSS (VmHWM) per worker,
the versions, the load average at the start and the end, and the git commit.
"""

import argparse
import os
import sys
import tempfile
import time
from collections.abc import Sequence
from contextlib import ExitStack
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench import chart, environment, postgres, probes, redis_db, report, wrk
from bench.configurations import Configuration
from bench.dataset import DatasetPlan
from bench.deployment import Launch, launched, postgres_configuration
from bench.endpoints import Cache, every_endpoint, growth_endpoints
from bench.postgres import PostgresDatabase
from bench.runner import Row, Runner, RunPlan, summarize
from bench.servers import Server, ServerFailedToStart

REPO_ROOT = Path(__file__).resolve().parent.parent
RESULTS_DIR = Path(__file__).resolve().parent / "results"
POSTGRES_DATABASE = "quill_bench"
POSTGRES_REDIS_DATABASE = 15
GROWTH_SIZES = (10_000, 1_000_000)
CLOSED_LOOP_NOTE = (
    "@ half load rows: closed-loop approximation (wrk delay() per connection); a slow server is "
    "offered less than the stated rate"
)
WRK_NOTE = "wrk shares the machine's CPUs with the servers (about one core at -t2)"


def main(argv: Sequence[str] | None = None) -> int:
    arguments = _parse(argv)
    missing = wrk.ensure_installed()
    if missing:
        print(f"bench: {missing}", file=sys.stderr)
        return 2
    started = time.monotonic()
    try:
        if arguments.growth:
            _growth(arguments)
            failures: list[str] = []
        else:
            failures = _benchmark(arguments)
    except (ServerFailedToStart, wrk.WrkFailed) as failure:
        print(f"bench: {failure}", file=sys.stderr)
        return 1
    print(f"bench: done in {time.monotonic() - started:.0f} s")
    if failures:
        for problem in failures:
            print(f"bench: {problem}", file=sys.stderr)
        return 1 if arguments.quick else 0
    return 0


def _parse(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--quick", action="store_true", help="CI smoke run: small, 1-2 minutes")
    parser.add_argument(
        "--growth", action="store_true", help="10k against 1M posts (--posts ignored)"
    )
    parser.add_argument("--posts", type=int, help="posts to seed (default 100000; quick 500)")
    parser.add_argument("--users", type=int, help="users to seed (default 2000; quick 100)")
    parser.add_argument("--rounds", type=int, help="interleaved rounds (default 3; quick 1)")
    parser.add_argument("--duration", type=float, help="seconds per wrk run (default 10; quick 1)")
    parser.add_argument("--connections", type=int, default=64, help="wrk -c (default 64)")
    parser.add_argument("--threads", type=int, default=2, help="wrk -t (default 2)")
    parser.add_argument("--results-dir", type=Path, help="default bench/results; quick: a temp dir")
    arguments = parser.parse_args(argv)
    quick = arguments.quick
    arguments.posts = arguments.posts or (500 if quick else 100_000)
    arguments.users = arguments.users or (100 if quick else 2000)
    arguments.rounds = arguments.rounds or (1 if quick else 3)
    arguments.duration = arguments.duration or (1.0 if quick else 10.0)
    if arguments.results_dir is None:
        quick_dir = Path(tempfile.mkdtemp(prefix="quill-bench-quick-")) if quick else None
        arguments.results_dir = quick_dir or RESULTS_DIR
    return arguments


def _benchmark(arguments: argparse.Namespace) -> list[str]:
    """The full (or quick) run; returns what failed, for --quick's exit code."""
    run_id = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    plan = DatasetPlan(users=arguments.users, posts=arguments.posts)
    load = wrk.Load(arguments.threads, arguments.connections, arguments.duration)
    skipped: dict[str, str] = {}
    postgres_skip = postgres.unreachable_reason() or redis_db.unreachable_reason(
        redis_db.url_of(POSTGRES_REDIS_DATABASE)
    )
    described = environment.describe(REPO_ROOT, postgres_reachable=postgres_skip is None)
    print(
        f"bench: {WRK_NOTE}; {plan.posts} posts, {arguments.rounds} round(s) of "
        f"{arguments.duration:g} s",
        flush=True,
    )
    with tempfile.TemporaryDirectory(prefix="quill-bench-") as work, ExitStack() as stack:
        work_dir = Path(work)
        # Booting while the configurations seed: the ceiling is only waited for before round 1.
        hello = Server("hello", "bench.hello:app", dict(os.environ), work_dir / "hello.log")
        hello.launch(REPO_ROOT)
        stack.callback(hello.stop)
        launches: list[Launch] = []
        if postgres_skip:
            skipped["postgres+redis"] = postgres_skip
            print(f"bench: skipping postgres+redis: {postgres_skip}", flush=True)
        else:
            configuration = stack.enter_context(
                postgres_configuration(
                    "postgres+redis",
                    PostgresDatabase(POSTGRES_DATABASE),
                    redis_db.url_of(POSTGRES_REDIS_DATABASE),
                )
            )
            launches.append(stack.enter_context(launched(configuration, plan, work_dir, REPO_ROOT)))
        sqlite = _sqlite_configuration(work_dir)
        launches.append(stack.enter_context(launched(sqlite, plan, work_dir, REPO_ROOT)))
        deployments = [launch.wait_until_ready() for launch in launches]
        hello.wait_until_serving()
        endpoints = every_endpoint(plan)
        runner = Runner(RunPlan(arguments.rounds, load, run_id), hello, deployments)
        runner.warm_up(endpoints)
        runner.rounds(endpoints)
        runner.paced(endpoints)
        seed_seconds = {deployment.name: deployment.seed_seconds for deployment in deployments}
    described["load_average_at_end"] = probes.load_average()
    rows = summarize(runner.measurements)
    for name, found in rows.items():
        print()
        print(report.table(name, found))
    print()
    print(
        report.memory_lines(
            runner.measurements.rss_after_round, runner.measurements.peak_rss_per_worker
        )
    )
    print(f"\n{CLOSED_LOOP_NOTE}; {WRK_NOTE}")
    document: dict[str, Any] = {
        "run_id": run_id,
        "mode": "quick" if arguments.quick else "full",
        "settings": {
            "posts": plan.posts,
            "users": plan.users,
            "rounds": arguments.rounds,
            "seconds_per_run": arguments.duration,
            "wrk_threads": load.threads,
            "wrk_connections": load.connections,
        },
        "environment": described,
        "seed_seconds": seed_seconds,
        "skipped": skipped,
        "results": report.rows_as_json(rows),
        "rss_mib_after_each_round": runner.measurements.rss_after_round,
        "peak_rss_mib_per_worker": runner.measurements.peak_rss_per_worker,
        "notes": [CLOSED_LOOP_NOTE, WRK_NOTE],
    }
    _write(document, rows, arguments.results_dir, run_id, prefix="")
    return [
        f"{name}: {row.endpoint} had {row.errors} errors and {row.requests_per_second:.0f} req/s"
        for name, found in rows.items()
        for row in found
        if row.errors or not row.requests_per_second
    ]


def _growth(arguments: argparse.Namespace) -> None:
    """The same uncached reads on a small and a large posts table, on PostgreSQL."""
    reason = postgres.unreachable_reason()
    if reason:
        print(f"bench: no growth run: {reason}", flush=True)
        return
    run_id = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    load = wrk.Load(arguments.threads, arguments.connections, arguments.duration)
    by_size: dict[int, list[Row]] = {}
    seed_seconds: dict[int, float] = {}
    for posts in GROWTH_SIZES:
        plan = DatasetPlan(users=arguments.users, posts=posts)
        with tempfile.TemporaryDirectory(prefix="quill-bench-") as work, ExitStack() as stack:
            configuration = stack.enter_context(
                postgres_configuration(
                    f"postgres, {posts} posts",
                    PostgresDatabase(f"{POSTGRES_DATABASE}_growth"),
                    None,
                )
            )
            launch = stack.enter_context(
                launched(configuration, plan, Path(work), REPO_ROOT, caches=(Cache.OFF,))
            )
            deployment = launch.wait_until_ready()
            endpoints = growth_endpoints(plan)
            runner = Runner(RunPlan(arguments.rounds, load, run_id), None, [deployment])
            runner.warm_up(endpoints)
            runner.rounds(endpoints)
            seed_seconds[posts] = deployment.seed_seconds
            by_size[posts] = summarize(runner.measurements)[configuration.name]
    small, large = GROWTH_SIZES
    print()
    for posts in GROWTH_SIZES:
        print(
            report.table(
                f"postgres, {posts} posts (seeded in {seed_seconds[posts]:.1f} s)", by_size[posts]
            )
        )
        print()
    print(report.growth_table(small, by_size[small], large, by_size[large]))
    document = {
        "run_id": run_id,
        "mode": "growth",
        "environment": environment.describe(REPO_ROOT, postgres_reachable=True),
        "seed_seconds": seed_seconds,
        "results": report.rows_as_json({str(posts): rows for posts, rows in by_size.items()}),
    }
    _write(document, {}, arguments.results_dir, run_id, prefix="growth-")


def _sqlite_configuration(work_dir: Path) -> Configuration:
    """The embedded default, as `python3 run.py serve` runs it: a SQLite file and no Redis, so
    the response cache is off (its "cached" rows are misses) and the rate limits in memory."""
    database_url = f"sqlite+aiosqlite:///{work_dir / 'sqlite' / 'quill.db'}"
    return Configuration("sqlite", database_url, None, None)


def _write(
    document: dict[str, Any],
    rows: dict[str, list[Row]],
    results_dir: Path,
    run_id: str,
    prefix: str,
) -> None:
    paths = [results_dir / f"{prefix}{run_id}.json", results_dir / f"{prefix}latest.json"]
    report.write_json(document, paths)
    print(f"bench: results in {paths[0]} and {paths[1]}")
    if rows:
        png = results_dir / f"{prefix}latest.png"
        problem = chart.draw_ratios(rows, png)
        print(f"bench: {problem}" if problem else f"bench: chart in {png}")


if __name__ == "__main__":
    sys.exit(main())
