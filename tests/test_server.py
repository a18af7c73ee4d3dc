"""The service as people run it: `fastapi run` with several worker processes on the embedded
SQLite default, started from nothing (no data folder, no secret, no schema)."""

import itertools
import os
import signal
import socket
import time
import uuid
from collections.abc import Callable, Collection, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.parser import text_string_to_metric_families

from app.core.metrics_dir import ROOT as METRICS_ROOT
from tests.factories import bearer
from tests.quill_process import QuillProcess, log_entries, running_quill, started_workers

WORKERS = 2
# Each new connection goes to whichever worker accepts it first: both have answered long before.
MAX_ROUNDS = 100
PASSWORD = "a long password"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[QuillProcess]:
    # One JSON object a line, each with the pid of the process that wrote it.
    with running_quill(
        tmp_path_factory.mktemp("server"),
        {"LOG_JSON": "true"},
        workers=WORKERS,
        started=lambda log: len(started_workers(log)) >= WORKERS,
    ) as running:
        yield running


def request_pids(log: Path, request_ids: Collection[str]) -> dict[str, int]:
    """The pid of the worker that logged each of these requests, as far as it is logged yet."""
    return {
        entry["request_id"]: entry["pid"]
        for entry in log_entries(log)
        if entry["event"] == "request" and entry.get("request_id") in request_ids
    }


def wait_for_request_pids(log: Path, request_ids: Collection[str]) -> dict[str, int]:
    """A request is logged just after its response is sent, so its line may not be there yet."""
    deadline = time.monotonic() + 10
    while len(pids := request_pids(log, request_ids)) < len(request_ids):
        if time.monotonic() > deadline:
            pytest.fail(f"requests missing from the server log: {set(request_ids) - set(pids)}")
        time.sleep(0.05)
    return pids


class FreshConnections:
    """Each request on a new connection, so that the requests spread over the worker processes,
    and with a request id of its own, to find it in the server's log."""

    def __init__(self, server: QuillProcess) -> None:
        self.server = server
        prefix = f"server-test-{uuid.uuid4().hex}"
        self._ids = (f"{prefix}-{n}" for n in itertools.count())

    def send(
        self, method: str, path: str, *, token: str | None = None, **kwargs: Any
    ) -> tuple[httpx.Response, str]:
        request_id = next(self._ids)
        headers = {"X-Request-ID": request_id, **(bearer(token) if token else {})}
        with httpx.Client(base_url=self.server.url, timeout=10) as client:
            response = client.request(method, path, headers=headers, **kwargs)
        assert response.headers["X-Request-ID"] == request_id
        return response, request_id


def test_workers_started_from_nothing_share_one_database_and_one_secret(
    server: QuillProcess,
) -> None:
    connections = FreshConnections(server)
    signup, signup_id = connections.send(
        "POST",
        "/api/v1/users/",
        json={"username": "ann", "email": "ann@example.com", "password": PASSWORD},
    )
    assert signup.status_code == 201, signup.text

    # Sign in and use the token, each on a new connection, until both happened in a worker other
    # than the one before: one worker finds the account another created (one database), and
    # accepts the token another signed (one secret).
    rounds: list[tuple[str, str]] = []
    pids: dict[str, int] = {}
    for _ in range(MAX_ROUNDS):
        login, login_id = connections.send(
            "POST", "/api/v1/auth/token", data={"username": "ann", "password": PASSWORD}
        )
        assert login.status_code == 200, login.text
        me, me_id = connections.send("GET", "/api/v1/users/me", token=login.json()["access_token"])
        assert me.status_code == 200, me.text
        assert me.json()["username"] == "ann"
        rounds.append((login_id, me_id))

        pids = wait_for_request_pids(server.log, [signup_id, *itertools.chain(*rounds)])
        found_another_workers_account = any(pids[login] != pids[signup_id] for login, _ in rounds)
        accepted_another_workers_token = any(pids[login] != pids[me] for login, me in rounds)
        if found_another_workers_account and accepted_another_workers_token:
            break
    else:
        pytest.fail(f"{len(rounds)} rounds never crossed workers; pids seen: {set(pids.values())}")
    assert len(set(pids.values())) >= WORKERS

    with httpx.Client(base_url=server.url, timeout=10) as client:
        docs = client.get("/docs")
    assert docs.status_code == 200
    assert "/docs-assets/swagger-ui-bundle.js" in docs.text


def wait_until(condition: Callable[[], object], what: str) -> None:
    deadline = time.monotonic() + 60
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"not within 60 seconds: {what}")
        time.sleep(0.1)


def metric_value(exposition: str, name: str, **labels: str) -> float:
    for family in text_string_to_metric_families(exposition):
        for sample in family.samples:
            if sample.name == name and sample.labels == labels:
                return sample.value
    return 0.0


def live_gauges_file(pid: int) -> Path | None:
    """The file of `pid`'s live gauges, in its server's metric directory, while it exists."""
    return next(METRICS_ROOT.glob(f"*/gauge_livesum_{pid}.db"), None)


def requests_in_progress_in(gauges_file: Path) -> float:
    """The one process's count, read from its file as a scrape reads it."""
    for metric in MultiProcessCollector.merge([str(gauges_file)]):  # type: ignore[no-untyped-call]
        for sample in metric.samples:
            if sample.name == "http_requests_in_progress":
                return float(sample.value)
    return 0.0


def send_until_every_worker_answered(connections: FreshConnections, path: str) -> int:
    """GET `path` on new connections until each worker has answered one; how many were sent."""
    sent: list[str] = []
    for _ in range(MAX_ROUNDS):
        response, request_id = connections.send("GET", path)
        assert response.status_code == 404, response.text
        sent.append(request_id)
        pids = wait_for_request_pids(connections.server.log, sent)
        if len(set(pids.values())) >= WORKERS:
            return len(sent)
    pytest.fail(f"{len(sent)} requests never reached every worker; pids seen: {set(pids.values())}")


NOT_A_POST = {"method": "GET", "route": "/api/v1/posts/{post_id}", "status": "404"}


def test_metrics_sum_the_requests_of_every_worker(server: QuillProcess) -> None:
    connections = FreshConnections(server)
    sent = send_until_every_worker_answered(connections, "/api/v1/posts/424242")

    # Each worker answered some of the requests, none all: a count of `sent` is a sum. Whichever
    # worker answers a scrape gives it.
    scraped_by: set[int] = set()
    for _ in range(MAX_ROUNDS):
        scrape, scrape_id = connections.send("GET", "/metrics")
        assert scrape.status_code == 200
        assert metric_value(scrape.text, "http_requests_total", **NOT_A_POST) >= sent
        scraped_by.add(wait_for_request_pids(server.log, [scrape_id])[scrape_id])
        if len(scraped_by) >= WORKERS:
            break
    else:
        pytest.fail(f"the scrapes never reached every worker: {scraped_by}")


def worker_pids(server: QuillProcess) -> set[int]:
    """The supervisor's children now: a worker it stopped and joined is no longer one."""
    children = Path(f"/proc/{server.pid}/task/{server.pid}/children").read_text().split()
    return {int(pid) for pid in children} & started_workers(server.log)


def test_a_worker_that_stops_leaves_the_live_sums_and_its_counts_stay(server: QuillProcess) -> None:
    connections = FreshConnections(server)
    send_until_every_worker_answered(connections, "/api/v1/posts/535353")
    before, _ = connections.send("GET", "/metrics")
    workers = worker_pids(server)
    assert len(workers) == WORKERS
    assert all(live_gauges_file(pid) for pid in workers)

    # One worker fewer: the supervisor stops one gracefully, and starts none in its place (so no
    # worker starting up cleans up after it).
    os.kill(server.pid, signal.SIGTTOU)
    wait_until(lambda: len(worker_pids(server)) < WORKERS, "the supervisor stopped a worker")
    [stopped] = workers - worker_pids(server)
    after, _ = connections.send("GET", "/metrics")
    stopped_gauges = live_gauges_file(stopped)
    os.kill(server.pid, signal.SIGTTIN)
    wait_until(lambda: len(worker_pids(server)) == WORKERS, "the supervisor started a worker")

    assert stopped_gauges is None
    # Its requests still count: a counter never goes down because a worker stopped.
    assert metric_value(after.text, "http_requests_total", **NOT_A_POST) >= metric_value(
        before.text, "http_requests_total", **NOT_A_POST
    )


HANGING_REQUEST = (
    b"POST /api/v1/users/ HTTP/1.1\r\nHost: 127.0.0.1\r\n"
    b"Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n{"
)


def test_a_killed_workers_requests_in_progress_leave_the_sum_once_a_worker_starts(
    server: QuillProcess,
) -> None:
    connections = FreshConnections(server)
    port = httpx.URL(server.url).port
    assert port is not None
    started_before = started_workers(server.log)

    with socket.create_connection(("127.0.0.1", port)) as hanging:
        # A request whose body never comes: in progress in some worker until that one dies.
        hanging.sendall(HANGING_REQUEST)
        holding: list[int] = []

        def some_worker_holds_it() -> bool:
            holding[:] = [
                pid
                for pid in started_before
                if (gauges := live_gauges_file(pid)) and requests_in_progress_in(gauges) == 1
            ]
            return bool(holding)

        wait_until(some_worker_holds_it, "the hanging request reached a worker")
        [holder] = holding
        held = live_gauges_file(holder)
        # Killed, it cannot take its gauges out of the sums; the supervisor starts another.
        os.kill(holder, signal.SIGKILL)
        wait_until(lambda: started_workers(server.log) - started_before, "a worker replaced it")

    scrape, _ = connections.send("GET", "/metrics")

    assert held is not None
    assert not held.exists()
    # Only the scrape itself.
    assert metric_value(scrape.text, "http_requests_in_progress") == 1
