"""Prometheus metrics: what is measured, the middleware that measures requests, and the scrape.

Every process writes its metrics into files of one directory shared by the workers of its
server (app/core/metrics_dir.py), and a scrape of any worker sums them all, so `/metrics` counts
the requests of every worker whichever one answers it.

Labels stay few whatever clients send: `method` is one of the HTTP methods or "other", and
`route` is the template a route was declared with (`/api/v1/posts/{post_id}`), never the path;
a request no route answered (a 404 of an unknown path, a redirect to the slash-ended path, a
rejection by a middleware before routing) is labelled "unmatched".

The route template, for middleware that answers before routing: FastAPI's router puts the route
it chose in the request's scope, which is read once the response is sent. A middleware that
answers before routing (the response cache) puts the template of the route it answers for in
`scope["state"][ROUTE_TEMPLATE_STATE_KEY]`; when set, that is the label.
"""

from app.core.metrics_dir import MULTIPROCESS_DIR, SHARED_WITH_OTHER_PROCESSES

# isort: split
# prometheus_client chooses how to store values when it is imported: the line above must have
# named the directory first.

import glob
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from fastapi.routing import RouteContext, iter_route_contexts
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, multiprocess, values
from prometheus_client.exposition import choose_encoder
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.pool import ConnectionPoolEntry
from starlette.routing import Match, Mount
from starlette.types import ASGIApp, Message, Receive, Scope, Send

if not values.ValueClass._multiprocess:
    raise RuntimeError(
        "prometheus_client was imported before app.core.metrics: its metrics would count only "
        "the process that answers a scrape. Import app.core.metrics first."
    )

ROUTE_TEMPLATE_STATE_KEY = "route_template"
UNMATCHED_ROUTE = "unmatched"
OTHER_METHOD = "other"
KNOWN_METHODS = frozenset(
    {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "CONNECT", "TRACE"}
)
REQUEST_LABELS = ("method", "route", "status")

# registry=None: a scrape reads every process's files (render_metrics), never a registry.
REQUESTS = Counter("http_requests_total", "Requests answered.", REQUEST_LABELS, registry=None)
REQUEST_DURATION = Histogram(
    "http_request_duration_seconds",
    "Time from a request's arrival to the end of its response.",
    REQUEST_LABELS,
    registry=None,
)
# livesum: the sum over the processes that run now; a stopped worker's share goes with it.
REQUESTS_IN_PROGRESS = Gauge(
    "http_requests_in_progress",
    "Requests being answered now.",
    registry=None,
    multiprocess_mode="livesum",
)
DB_POOL_CONNECTIONS_IN_USE = Gauge(
    "db_pool_connections_in_use",
    "Database connections checked out of the pools.",
    registry=None,
    multiprocess_mode="livesum",
)


def method_label(method: str) -> str:
    return method if method in KNOWN_METHODS else OTHER_METHOD


class RouteTemplates:
    """The template of the route that answered a request, from what routing left in its scope.

    FastAPI puts the route it chose in scope["route"], but with the path it was declared with in
    its own router (`/posts/{post_id}`): the prefixes of the routers including it are FastAPI's
    to apply, which `iter_route_contexts` does. Plain Starlette routes and mounts leave only
    their endpoint in the scope. Both are indexed, for the app at hand, on first use and again
    when its routes have changed.

    FastAPI also leaves in the scope, under a key of its own, the context of the route it chose,
    which holds the full path: read first, it spares that index (measured: 35 ms of building
    every route's dependencies per app, a third of a short test). The index stays for routes
    that leave no such context, and for a FastAPI that moves it.
    """

    def __init__(self) -> None:
        self._indexed: tuple[int, int] | None = None
        self._contexts: dict[int, list[RouteContext]] = {}

    def route_of(self, scope: Scope) -> str:
        template = (scope.get("state") or {}).get(ROUTE_TEMPLATE_STATE_KEY)
        if isinstance(template, str):
            return template
        chosen = (scope.get("fastapi") or {}).get("effective_route_context")
        template = getattr(chosen, "path_format", None)
        if isinstance(template, str) and template:
            return template
        answered_by = scope.get("route") or scope.get("endpoint")
        app = scope.get("app")
        if answered_by is None or app is None:
            return UNMATCHED_ROUTE
        contexts = self._contexts_of(app, answered_by)
        if len(contexts) > 1:
            # One route included under two prefixes: the one whose path this is.
            contexts = [c for c in contexts if c.matches(scope)[0] is not Match.NONE] or contexts
        if not contexts or not contexts[0].path_format:
            return UNMATCHED_ROUTE
        return contexts[0].path_format

    def _contexts_of(self, app: Any, answered_by: object) -> list[RouteContext]:
        version = (id(app), len(app.routes))
        if self._indexed != version:
            self._contexts = {}
            for context in iter_route_contexts(app.routes):
                route = context.original_route
                endpoint = route.app if isinstance(route, Mount) else context.endpoint
                for key in {id(route), id(endpoint)}:
                    self._contexts.setdefault(key, []).append(context)
            self._indexed = version
        return self._contexts.get(id(answered_by), [])


class MetricsMiddleware:
    """Counts and times every HTTP request, and how many are in progress.

    It sits just inside RequestContextMiddleware, so it sees the status that one sends even for
    a crash, and outside everything that may answer early (limits, the cache).
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.routes = RouteTemplates()
        # The series of each label set seen, as few as the labels allow: labels() costs a lock.
        self._series: dict[tuple[str, str, str], tuple[Counter, Histogram]] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        started = time.perf_counter()
        # What RequestContextMiddleware answers when an exception leaves nothing sent.
        status = 500

        async def send_recording_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        REQUESTS_IN_PROGRESS.inc()
        try:
            await self.app(scope, receive, send_recording_status)
        finally:
            REQUESTS_IN_PROGRESS.dec()
            labels = (method_label(scope["method"]), self.routes.route_of(scope), str(status))
            if (series := self._series.get(labels)) is None:
                series = (REQUESTS.labels(*labels), REQUEST_DURATION.labels(*labels))
                self._series[labels] = series
            count, duration = series
            count.inc()
            duration.observe(time.perf_counter() - started)


def render_metrics(accept: str) -> tuple[bytes, str]:
    """Every process's metrics, summed, in the format `accept` asks for, and its media type.

    It reads files: call it off the event loop.
    """
    registry = CollectorRegistry()
    # prometheus_client leaves its multiprocess functions unannotated.
    multiprocess.MultiProcessCollector(registry, path=str(MULTIPROCESS_DIR))  # type: ignore[no-untyped-call]
    encode, media_type = choose_encoder(accept)
    return encode(registry), media_type


def count_pool_connections(engine: AsyncEngine) -> None:
    """Keep DB_POOL_CONNECTIONS_IN_USE current for `engine`'s pool.

    Only a checkout ends in a check-in that counts: the pool also "checks in" connections that
    failed to connect or to pass the pre-ping, which were never checked out.
    """
    checked_out: set[int] = set()

    def on_checkout(_dbapi_connection: Any, record: ConnectionPoolEntry, _proxy: Any) -> None:
        checked_out.add(id(record))
        DB_POOL_CONNECTIONS_IN_USE.inc()

    def on_return(_dbapi_connection: Any, record: ConnectionPoolEntry) -> None:
        if id(record) in checked_out:
            checked_out.discard(id(record))
            DB_POOL_CONNECTIONS_IN_USE.dec()

    event.listen(engine.sync_engine, "checkout", on_checkout)
    event.listen(engine.sync_engine, "checkin", on_return)
    # A detached connection leaves the pool without a check-in.
    event.listen(engine.sync_engine, "detach", on_return)


def _mark_process_dead(pid: int) -> None:
    """Remove `pid`'s live gauges from the sums (its counters and histograms keep counting)."""
    multiprocess.mark_process_dead(pid, str(MULTIPROCESS_DIR))  # type: ignore[no-untyped-call]


def _live_gauge_pids() -> set[int]:
    pids = set()
    for path in glob.glob(str(MULTIPROCESS_DIR / "gauge_live*_*.db")):
        pid = Path(path).stem.rpartition("_")[2]
        if pid.isdigit():
            pids.add(int(pid))
    return pids


def _is_running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@contextmanager
def worker_metrics(engine: AsyncEngine) -> Iterator[None]:
    """While an app serves: its pool is counted; once it stops, in a worker of a server of several
    processes, this process's live gauges leave the sums (mark_process_dead).

    A worker that died without stopping (killed) left its live gauges behind: a worker that
    starts removes those of every process that no longer runs.
    """
    count_pool_connections(engine)
    # os.kill(pid, 0) asks whether pid runs on POSIX only (on Windows it would stop it).
    if SHARED_WITH_OTHER_PROCESSES and os.name == "posix":
        for pid in _live_gauge_pids() - {os.getpid()}:
            if not _is_running(pid):
                _mark_process_dead(pid)
    try:
        yield
    finally:
        # A process serving alone keeps its files: its tests start apps one after another.
        if SHARED_WITH_OTHER_PROCESSES:
            _mark_process_dead(os.getpid())
