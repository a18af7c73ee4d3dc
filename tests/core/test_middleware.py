import re
import uuid

import httpx
import pytest
import structlog
from fastapi import FastAPI

from app.core.config import Settings
from app.main import create_app
from tests.conftest import Serve
from tests.helpers import capture_logs

GENERATED_REQUEST_ID = re.compile(r"[0-9a-f]{32}")


@pytest.fixture
def logging_app(settings: Settings) -> FastAPI:
    app = create_app(settings)

    @app.get("/test/log")
    async def log_something() -> None:
        structlog.get_logger("test").info("test.logged")

    @app.get("/test/crash")
    async def crash() -> None:
        raise RuntimeError("the route failed")

    return app


VALID_REQUEST_IDS = ["abc", "A-b_c.d:e", "x" * 128, str(uuid.uuid4()), "lb-01:2026-11-27T10.00.00"]
INVALID_REQUEST_IDS = ["x" * 129, "", "has space", "semi;colon", "slash/id", "<script>", "ünïcode"]


async def test_valid_incoming_request_id_is_echoed(client: httpx.AsyncClient) -> None:
    for request_id in VALID_REQUEST_IDS:
        ok = await client.get("/health", headers={"X-Request-ID": request_id})
        missing = await client.get("/no-such-thing", headers={"X-Request-ID": request_id})

        assert ok.status_code == 200
        assert ok.headers["X-Request-ID"] == request_id
        assert missing.status_code == 404
        assert missing.headers["X-Request-ID"] == request_id
        assert missing.json()["request_id"] == request_id


async def test_invalid_incoming_request_id_is_replaced_by_a_generated_one(
    client: httpx.AsyncClient,
) -> None:
    for request_id in INVALID_REQUEST_IDS:
        headers = {b"X-Request-ID": request_id.encode("latin-1")}
        response = await client.get("/no-such-thing", headers=headers)

        generated = response.headers["X-Request-ID"]
        assert response.status_code == 404
        assert GENERATED_REQUEST_ID.fullmatch(generated), request_id
        assert response.json()["request_id"] == generated


async def test_each_request_without_an_id_gets_its_own(client: httpx.AsyncClient) -> None:
    first = await client.get("/health")
    second = await client.get("/health")

    assert GENERATED_REQUEST_ID.fullmatch(first.headers["X-Request-ID"])
    assert GENERATED_REQUEST_ID.fullmatch(second.headers["X-Request-ID"])
    assert first.headers["X-Request-ID"] != second.headers["X-Request-ID"]


@pytest.mark.parametrize(
    ("path", "status"), [("/health", 200), ("/no-such-thing", 404), ("/test/crash", 500)]
)
async def test_every_response_carries_a_process_time_in_seconds(
    logging_app: FastAPI, serve: Serve, path: str, status: int
) -> None:
    async with serve(logging_app) as client:
        response = await client.get(path)

    assert response.status_code == status
    assert 0 <= float(response.headers["X-Process-Time"]) < 60
    assert response.headers["X-Request-ID"]


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [
        ("GET", "/health", 200),
        ("DELETE", "/health", 405),
        ("POST", "/api/v1/users/", 422),
        ("GET", "/test/crash", 500),
    ],
)
async def test_each_request_is_logged_once_with_method_path_status_duration_and_request_id(
    logging_app: FastAPI, serve: Serve, method: str, path: str, status: int
) -> None:
    async with serve(logging_app) as client:
        with capture_logs() as logs:
            response = await client.request(method, path, headers={"X-Request-ID": "req-1"})

    assert response.status_code == status
    [line] = [entry for entry in logs if entry["event"] == "request"]
    assert line["method"] == method
    assert line["path"] == path
    assert line["status"] == status
    assert line["request_id"] == "req-1"
    assert isinstance(line["duration_ms"], float)
    assert line["duration_ms"] >= 0
    assert line["log_level"] == "info"


async def test_logs_written_while_handling_a_request_carry_its_request_id(
    logging_app: FastAPI, serve: Serve
) -> None:
    async with serve(logging_app) as client:
        with capture_logs() as logs:
            response = await client.get("/test/log")
        with capture_logs() as later:
            structlog.get_logger("test").info("test.outside")

    assert response.status_code == 200
    [inside] = [entry for entry in logs if entry["event"] == "test.logged"]
    assert inside["request_id"] == response.headers["X-Request-ID"]
    assert "request_id" not in later[0]
