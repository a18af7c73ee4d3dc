"""What a server writes to stderr, as it writes it: JSON lines in production, readable lines in
development, the request id on every line logged while a request is handled (by the route, a
service, SQLAlchemy or a library) and nothing below LOG_LEVEL.

tests/core/test_middleware.py checks the access line's fields through structlog's capture; these
read the rendered output."""

import io
import json
import logging
import re
import sys
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import structlog
from fastapi import FastAPI
from pydantic import ValidationError

from app.core.config import Environment, Settings
from app.main import create_app

REQUEST_ID = "logging-test-1"
TIMESTAMP = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d+Z ")
# The mail dispatcher works beside the requests, in lines of its own that belong to no request.
NO_BACKGROUND_WORK = {"MAIL_DISPATCHER_IN_APP": False, "DB_ECHO": True}
SIGN_UP = {"username": "ann", "email": "ann@example.com", "password": "a long password"}


async def lines_logged_during(
    app: FastAPI, capsys: pytest.CaptureFixture[str], method: str, path: str, **kwargs: Any
) -> tuple[httpx.Response, list[str]]:
    """The response, and every line written to stderr while it was being answered."""
    transport = httpx.ASGITransport(app=app)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=transport, base_url="http://localhost") as client,
    ):
        capsys.readouterr()
        response = await client.request(
            method, path, headers={"X-Request-ID": REQUEST_ID}, **kwargs
        )
        output = capsys.readouterr()
    assert "INSERT" not in output.out  # nothing of the log on stdout
    return response, [line for line in output.err.splitlines() if line]


async def test_production_writes_every_line_of_a_request_as_json_with_its_request_id(
    settings: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    app = create_app(
        settings.model_copy(update={**NO_BACKGROUND_WORK, "ENVIRONMENT": Environment.PRODUCTION})
    )
    response, lines = await lines_logged_during(app, capsys, "POST", "/api/v1/users/", json=SIGN_UP)

    assert response.status_code == 201, response.text
    entries = [json.loads(line) for line in lines]
    assert all(entry["request_id"] == REQUEST_ID for entry in entries), lines
    assert all({"event", "level", "timestamp", "pid"} <= entry.keys() for entry in entries)
    events = [entry["event"] for entry in entries]
    # The service's line, SQLAlchemy's statements (DB_ECHO), and the access line last.
    assert "user.registered" in events
    assert any(
        entry.get("logger") == "sqlalchemy.engine.Engine" and "INSERT INTO users" in entry["event"]
        for entry in entries
    )
    assert events[-1] == "request"


async def test_development_writes_readable_lines_with_the_request_id(
    settings: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    app = create_app(
        settings.model_copy(update={**NO_BACKGROUND_WORK, "ENVIRONMENT": Environment.DEVELOPMENT})
    )
    response, lines = await lines_logged_during(app, capsys, "POST", "/api/v1/users/", json=SIGN_UP)

    assert response.status_code == 201, response.text
    # A line begins with its time; a statement of several lines continues until the next.
    entries: list[str] = []
    for line in lines:
        if TIMESTAMP.match(line) or not entries:
            entries.append(line)
        else:
            entries[-1] += "\n" + line
    for entry in entries:
        assert TIMESTAMP.match(entry), entry
        assert f"request_id={REQUEST_ID}" in entry, entry
    assert any(" user.registered " in entry for entry in entries)
    assert any("INSERT INTO users" in entry for entry in entries)
    assert "[info     ] request " in entries[-1]
    assert "status=201" in entries[-1]


@pytest.fixture
def logging_everything(settings: Settings) -> Settings:
    return settings.model_copy(update={"LOG_JSON": True})


def app_logging_at_every_level(settings: Settings) -> FastAPI:
    app = create_app(settings)

    @app.get("/test/levels")
    async def log_at_every_level() -> None:
        quill = structlog.get_logger("test")
        quill.debug("quill.debug")
        quill.info("quill.info")
        quill.warning("quill.warning")
        library = logging.getLogger("test.library")
        library.setLevel(logging.DEBUG)  # a library choosing its own level, as uvicorn does
        library.debug("library.debug")
        library.info("library.info")
        library.warning("library.warning")

    return app


@pytest.mark.parametrize(
    ("level", "expected"),
    [
        ("DEBUG", ["quill.debug", "quill.info", "quill.warning", "library.debug", "library.info"]),
        ("INFO", ["quill.info", "quill.warning", "library.info", "library.warning", "request"]),
        ("warning", ["quill.warning", "library.warning"]),
        ("ERROR", []),
    ],
)
async def test_log_level_is_the_least_severe_line_written(
    logging_everything: Settings,
    capsys: pytest.CaptureFixture[str],
    level: str,
    expected: list[str],
) -> None:
    app = app_logging_at_every_level(Settings(**{**dict(logging_everything), "LOG_LEVEL": level}))
    response, lines = await lines_logged_during(app, capsys, "GET", "/test/levels")

    assert response.status_code == 200
    events = {json.loads(line)["event"] for line in lines}
    assert set(expected) <= events
    levels = logging.getLevelNamesMapping()
    assert all(levels[json.loads(line)["level"].upper()] >= levels[level.upper()] for line in lines)


def test_an_unknown_log_level_stops_start_up() -> None:
    with pytest.raises(ValidationError, match="LOG_LEVEL"):
        Settings(LOG_LEVEL="LOUD")


@pytest.fixture
def uvicorn_logging_as_a_server_configures_it() -> Iterator[logging.Logger]:
    """uvicorn's log config, applied before the app is imported: a handler of its own on the
    "uvicorn" logger, which does not propagate."""
    uvicorn = logging.getLogger("uvicorn")
    own = logging.StreamHandler()
    own.setFormatter(logging.Formatter("%(levelname)s:     %(message)s"))
    uvicorn.addHandler(own)
    uvicorn.propagate = False
    uvicorn.setLevel(logging.INFO)
    yield uvicorn
    uvicorn.removeHandler(own)
    uvicorn.propagate = True
    uvicorn.setLevel(logging.NOTSET)


async def test_uvicorns_lines_are_written_as_quills(
    uvicorn_logging_as_a_server_configures_it: logging.Logger,
    logging_everything: Settings,
    capsys: pytest.CaptureFixture[str],
) -> None:
    app = create_app(logging_everything)

    @app.get("/test/uvicorn")
    async def log_as_uvicorn() -> None:
        logging.getLogger("uvicorn.error").warning("something uvicorn says")

    response, lines = await lines_logged_during(app, capsys, "GET", "/test/uvicorn")

    assert response.status_code == 200
    [said] = [json.loads(line) for line in lines if "something uvicorn says" in line]
    assert said["logger"] == "uvicorn.error"
    assert said["level"] == "warning"
    assert said["request_id"] == REQUEST_ID


class WriteCalls(io.StringIO):
    """A stream that keeps each call of write() apart."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[str] = []

    def write(self, text: str) -> int:
        self.calls.append(text)
        return len(text)


def test_each_line_is_written_whole_in_one_call(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The workers of a server share one stderr: a line written in two parts (print() writes its
    newline apart, a system call of its own when PYTHONUNBUFFERED=1) can be cut in two by another
    worker's line."""
    create_app(settings.model_copy(update={"ENVIRONMENT": Environment.PRODUCTION}))
    stderr = WriteCalls()
    monkeypatch.setattr(sys, "stderr", stderr)

    structlog.get_logger("test").info("said through structlog")
    logging.getLogger("test").warning("said through the standard library")

    assert [json.loads(call)["event"] for call in stderr.calls] == [
        "said through structlog",
        "said through the standard library",
    ]
    assert all(call.endswith("}\n") for call in stderr.calls), stderr.calls
