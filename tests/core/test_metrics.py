"""Metrics through GET /metrics, in one process; tests/test_server.py shows them summed over the
workers of a real server.

The metrics belong to the process, not to one app: each test compares what it reads after its
requests with what it read before."""

import asyncio
import os
import shutil
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from fastapi import APIRouter, FastAPI, Request
from sqlalchemy import text
from starlette.middleware import Middleware
from starlette.responses import PlainTextResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from app.core import metrics
from app.core.config import Settings
from app.core.db import SQLITE_BEGIN_OPTION, Database
from app.core.db_errors import DatabaseUnreachable
from app.core.metrics import (
    ROUTE_TEMPLATE_STATE_KEY,
    UNMATCHED_ROUTE,
    count_pool_connections,
    render_metrics,
)
from app.core.metrics_dir import ENVIRONMENT_VARIABLE
from app.main import create_app
from tests.conftest import Serve
from tests.helpers import (
    assert_problem,
    parse,
    request_labels,
    routes_labelled,
    scrape,
    value,
)
from tests.quill_process import PROJECT_ROOT


async def test_requests_are_counted_and_timed_under_their_route_template(
    client: httpx.AsyncClient,
) -> None:
    labels = request_labels("GET", "/api/v1/posts/{post_id}", 404)
    before = await scrape(client)

    for post_id in (123456, 654321, 999999):
        response = await client.get(f"/api/v1/posts/{post_id}")
        assert response.status_code == 404
    after = await scrape(client)

    assert (
        value(after, "http_requests_total", **labels)
        == value(before, "http_requests_total", **labels) + 3
    )
    for series in ("http_request_duration_seconds_count", "http_request_duration_seconds_bucket"):
        bucket = {"le": "+Inf"} if series.endswith("bucket") else {}
        assert (
            value(after, series, **labels, **bucket)
            == value(before, series, **labels, **bucket) + 3
        )
    assert value(after, "http_request_duration_seconds_sum", **labels) > value(
        before, "http_request_duration_seconds_sum", **labels
    )
    assert not {route for route in routes_labelled(after) if "123456" in route}


async def test_paths_no_route_answers_share_one_label_whatever_was_asked(
    client: httpx.AsyncClient,
) -> None:
    labels = request_labels("GET", UNMATCHED_ROUTE, 404)
    other_method = request_labels("other", "/health", 405)
    before = await scrape(client)

    for path in ("/wp-admin.php", "/.env", "/scanner/1", "/scanner/2"):
        assert (await client.get(path)).status_code == 404
    assert (await client.request("BREW", "/health")).status_code == 405
    after = await scrape(client)

    assert (
        value(after, "http_requests_total", **labels)
        == value(before, "http_requests_total", **labels) + 4
    )
    assert (
        value(after, "http_requests_total", **other_method)
        == value(before, "http_requests_total", **other_method) + 1
    )
    assert not {route for route in routes_labelled(after) if "scanner" in route or "wp" in route}
    methods = {dict(labels)["method"] for (name, labels) in after if name == "http_requests_total"}
    assert "BREW" not in methods


async def test_routes_outside_the_api_have_templates_too(client: httpx.AsyncClient) -> None:
    before = await scrape(client)

    assert (await client.get("/docs-assets/swagger-ui.css")).status_code == 200
    assert (await client.get("/openapi.json")).status_code == 200
    assert (await client.delete("/health")).status_code == 405
    after = await scrape(client)

    for method, route, status in [
        ("GET", "/docs-assets/{path}", 200),
        ("GET", "/openapi.json", 200),
        ("DELETE", "/health", 405),
        # the scrape before this one
        ("GET", "/metrics", 200),
    ]:
        labels = request_labels(method, route, status)
        assert (
            value(after, "http_requests_total", **labels)
            == value(before, "http_requests_total", **labels) + 1
        ), labels


@pytest.fixture
def crashing_app(settings: Settings) -> FastAPI:
    app = create_app(settings)

    @app.get("/test/crash/{thing}")
    async def crash(thing: str) -> None:
        raise RuntimeError(thing)

    return app


async def test_a_crash_is_counted_as_the_500_it_is_answered_with(
    crashing_app: FastAPI, serve: Serve
) -> None:
    labels = request_labels("GET", "/test/crash/{thing}", 500)
    async with serve(crashing_app) as client:
        before = await scrape(client)
        assert (await client.get("/test/crash/boom")).status_code == 500
        after = await scrape(client)

    assert (
        value(after, "http_requests_total", **labels)
        == value(before, "http_requests_total", **labels) + 1
    )


class AnsweringBeforeRouting:
    """What the response cache does: answer for a route without routing, and name its template."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"].startswith("/cached/"):
            scope["state"][ROUTE_TEMPLATE_STATE_KEY] = "/cached/{item_id}"
            await PlainTextResponse("from the cache")(scope, receive, send)
            return
        await self.app(scope, receive, send)


async def test_a_middleware_answering_before_routing_names_the_route_template(
    settings: Settings, serve: Serve
) -> None:
    app = create_app(settings)
    # Innermost, where the response cache sits: inside the metrics middleware.
    app.user_middleware.append(Middleware(AnsweringBeforeRouting))
    labels = request_labels("GET", "/cached/{item_id}", 200)
    async with serve(app) as client:
        before = await scrape(client)
        for item_id in (1, 2):
            response = await client.get(f"/cached/{item_id}")
            assert response.text == "from the cache"
        after = await scrape(client)

    assert (
        value(after, "http_requests_total", **labels)
        == value(before, "http_requests_total", **labels) + 2
    )


@pytest.fixture
async def waiting_app(
    settings: Settings,
) -> AsyncIterator[tuple[FastAPI, asyncio.Event, asyncio.Event]]:
    app = create_app(settings)
    entered = asyncio.Event()
    release = asyncio.Event()

    @app.get("/test/wait")
    async def wait(request: Request) -> None:
        entered.set()
        await release.wait()

    yield app, entered, release
    release.set()


async def test_requests_in_progress_counts_those_not_yet_answered(
    waiting_app: tuple[FastAPI, asyncio.Event, asyncio.Event], serve: Serve
) -> None:
    app, entered, release = waiting_app
    async with serve(app) as client:
        # Each scrape is itself a request in progress.
        idle = value(await scrape(client), "http_requests_in_progress")
        waiting = asyncio.create_task(client.get("/test/wait"))
        await entered.wait()
        busy = value(await scrape(client), "http_requests_in_progress")
        release.set()
        assert (await waiting).status_code == 200
        done = value(await scrape(client), "http_requests_in_progress")

    assert idle >= 1
    assert busy == idle + 1
    assert done == idle


async def test_pool_gauge_counts_connections_checked_out(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    database: Database = app.state.database
    idle = value(await scrape(client), "db_pool_connections_in_use")

    # DEFERRED: two SQLite connections that both began IMMEDIATE would wait for each other.
    engine = database.engine.execution_options(**{SQLITE_BEGIN_OPTION: "DEFERRED"})
    async with engine.connect() as first, engine.connect() as second:
        await first.execute(text("SELECT 1"))
        await second.execute(text("SELECT 1"))
        busy = value(await scrape(client), "db_pool_connections_in_use")
    returned = value(await scrape(client), "db_pool_connections_in_use")

    assert busy == idle + 2
    assert returned == idle


async def test_pool_gauge_ignores_reconnections_that_fail(
    settings: Settings, tmp_path: Path
) -> None:
    def in_use() -> float:
        return value(parse(render_metrics("")[0].decode()), "db_pool_connections_in_use")

    folder = tmp_path / "database"
    folder.mkdir()
    database = Database(
        settings.model_copy(update={"DATABASE_URL": f"sqlite+aiosqlite:///{folder}/quill.db"})
    )
    count_pool_connections(database.engine)
    before = in_use()
    try:
        async with database.engine.connect() as connection:
            await connection.execute(text("SELECT 1"))
            # Its connection is lost (a database restart, say): the pool will reconnect it.
            await connection.invalidate()
        shutil.rmtree(folder)
        # Each failed reconnection "checks in" a connection that was never checked out.
        for _ in range(3):
            with pytest.raises(DatabaseUnreachable):
                async with database.engine.connect() as connection:
                    await connection.execute(text("SELECT 1"))
        after = in_use()
    finally:
        await database.dispose()

    assert after == before


@pytest.mark.parametrize(
    ("allowed", "client_host", "status"),
    [
        ([], "203.0.113.9", 200),
        (["10.0.0.0/8"], "10.1.2.3", 200),
        (["10.0.0.0/8", "192.0.2.7"], "192.0.2.7", 200),
        (["10.0.0.0/8"], "::ffff:10.1.2.3", 200),
        (["2001:db8::/32"], "2001:db8::1", 200),
        (["10.0.0.0/8"], "192.0.2.7", 403),
        (["10.0.0.0/8"], "2001:db8::1", 403),
        (["127.0.0.1"], "not-an-address", 403),
    ],
)
async def test_metrics_are_served_only_to_allowed_addresses(
    settings: Settings, allowed: list[str], client_host: str, status: int
) -> None:
    app = create_app(settings.model_copy(update={"METRICS_ALLOWED_IPS": allowed}))
    transport = httpx.ASGITransport(app=app, client=(client_host, 40000))
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=transport, base_url="http://test") as client,
    ):
        # A request first: a process that has answered none has no request counter to show.
        health = await client.get("/health")
        response = await client.get("/metrics")

    assert health.status_code == 200
    if status == 200:
        assert response.status_code == 200
        assert "http_requests_total" in response.text
    else:
        body = assert_problem(response, 403, "permission_denied")
        assert "http_requests_total" not in response.text
        assert body["detail"] == "Metrics are not available from this address."


def test_an_allowed_entry_that_is_no_address_stops_start_up(settings: Settings) -> None:
    with pytest.raises(ValueError, match=r"METRICS_ALLOWED_IPS: '10\.0\.0\.300' is neither"):
        create_app(settings.model_copy(update={"METRICS_ALLOWED_IPS": ["10.0.0.300"]}))


async def test_metrics_are_not_in_the_openapi_document(client: httpx.AsyncClient) -> None:
    openapi = (await client.get("/openapi.json")).json()

    assert "/metrics" not in openapi["paths"]
    assert "/ready" in openapi["paths"]


async def test_metrics_speak_openmetrics_to_who_asks_for_it(client: httpx.AsyncClient) -> None:
    response = await client.get("/metrics", headers={"Accept": "application/openmetrics-text"})

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/openmetrics-text")
    assert response.text.endswith("# EOF\n")


async def test_a_router_included_twice_is_labelled_with_the_prefix_it_answered_under(
    settings: Settings, serve: Serve
) -> None:
    app = create_app(settings)
    router = APIRouter()

    @router.get("/things/{thing_id}")
    async def get_thing(thing_id: int) -> int:
        return thing_id

    # The same route object, under two prefixes.
    app.include_router(router, prefix="/test/one")
    app.include_router(router, prefix="/test/two")
    async with serve(app) as client:
        before = await scrape(client)
        assert (await client.get("/test/one/things/1")).status_code == 200
        assert (await client.get("/test/two/things/2")).status_code == 200
        assert (await client.get("/test/two/things/3")).status_code == 200
        after = await scrape(client)

    for prefix, count in (("/test/one", 1), ("/test/two", 2)):
        labels = request_labels("GET", f"{prefix}/things/{{thing_id}}", 200)
        assert (
            value(after, "http_requests_total", **labels)
            == value(before, "http_requests_total", **labels) + count
        )


NO_SUCH_PID = 999_999_999


def file_names(directory: Path) -> set[str]:
    return {path.name for path in directory.iterdir()}


async def test_a_worker_drops_the_live_gauges_of_dead_workers_and_its_own_when_it_stops(
    settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A directory shared with other workers, of the test's own: this process's real files stay.
    monkeypatch.setattr(metrics, "MULTIPROCESS_DIR", tmp_path)
    monkeypatch.setattr(metrics, "SHARED_WITH_OTHER_PROCESSES", True)
    dead, running, this = NO_SUCH_PID, os.getppid(), os.getpid()
    for pid in (dead, running, this):
        (tmp_path / f"gauge_livesum_{pid}.db").touch()
        (tmp_path / f"counter_{pid}.db").touch()
    database = Database(settings)

    try:
        with metrics.worker_metrics(database.engine):
            while_serving = file_names(tmp_path)
        stopped = file_names(tmp_path)
    finally:
        await database.dispose()

    # A killed worker's share of the live sums goes when another starts; its counts stay.
    assert f"gauge_livesum_{dead}.db" not in while_serving
    assert {f"gauge_livesum_{running}.db", f"gauge_livesum_{this}.db"} <= while_serving
    assert f"gauge_livesum_{this}.db" not in stopped
    assert f"gauge_livesum_{running}.db" in stopped
    assert {f"counter_{pid}.db" for pid in (dead, running, this)} <= stopped


def test_prometheus_client_imported_before_the_directory_is_chosen_stops_the_import() -> None:
    environment = {key: value for key, value in os.environ.items() if key != ENVIRONMENT_VARIABLE}
    environment["PYTHONPATH"] = str(PROJECT_ROOT)
    imported = subprocess.run(
        [sys.executable, "-c", "import prometheus_client\nimport app.core.metrics"],
        env=environment,
        capture_output=True,
        text=True,
        check=False,
    )

    assert imported.returncode == 1
    assert "Import app.core.metrics first" in imported.stderr
