import sqlite3
from collections.abc import Mapping
from typing import ClassVar

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.config import Settings
from app.core.db import Database, SessionDep
from app.core.errors import AppError
from app.main import create_app
from app.models import User
from app.users import repository as users_repository
from tests.conftest import PostgresDatabases, Serve
from tests.helpers import assert_problem, capture_logs, count_users

NEW_USER = {"username": "ann", "email": "ann@example.com", "password": "correct horse battery"}


class SlowDown(AppError):
    status_code = 429
    code = "slow_down"
    default_detail = "Too many requests."
    default_headers: ClassVar[Mapping[str, str]] = {"Retry-After": "7"}


@pytest.fixture
def failing_app(settings: Settings) -> FastAPI:
    """The app with two routes that fail: one with an AppError, one with a bug."""
    app = create_app(settings)

    @app.get("/test/slow-down")
    async def slow_down() -> None:
        raise SlowDown("Wait a little.")

    @app.get("/test/crash")
    async def crash() -> None:
        raise RuntimeError("internal secret: the password is hunter2")

    return app


@pytest.mark.parametrize("path", ["/api/v1/no-such-thing", "/no-such-thing"])
async def test_unknown_route_is_a_404_problem(client: httpx.AsyncClient, path: str) -> None:
    response = await client.get(path)

    assert_problem(response, 404, "not_found")


async def test_wrong_method_is_a_405_problem_that_keeps_the_allow_header(
    client: httpx.AsyncClient,
) -> None:
    response = await client.delete("/health")

    assert_problem(response, 405, "method_not_allowed")
    assert response.headers["Allow"] == "GET, OPTIONS"


ROUTED_METHODS = [
    ("/api/v1/posts/", {"GET", "POST", "OPTIONS"}),
    ("/api/v1/posts/1", {"GET", "PATCH", "DELETE", "OPTIONS"}),
    ("/api/v1/users/me", {"GET", "PATCH", "DELETE", "OPTIONS"}),
]


@pytest.mark.parametrize(
    ("path", "allowed"),
    # The static files' mount answers for itself.
    [*ROUTED_METHODS, ("/docs-assets/favicon.png", {"GET", "HEAD"})],
)
async def test_allow_header_names_every_method_the_path_serves(
    client: httpx.AsyncClient, path: str, allowed: set[str]
) -> None:
    response = await client.put(path)

    assert_problem(response, 405, "method_not_allowed")
    assert set(response.headers["Allow"].split(", ")) == allowed


@pytest.mark.parametrize(("path", "allowed"), ROUTED_METHODS)
async def test_options_is_a_204_naming_every_method_the_path_serves(
    client: httpx.AsyncClient, path: str, allowed: set[str]
) -> None:
    response = await client.options(path)

    assert response.status_code == 204
    assert response.content == b""
    assert set(response.headers["Allow"].split(", ")) == allowed


async def test_options_of_a_path_nothing_serves_is_a_404(client: httpx.AsyncClient) -> None:
    response = await client.options("/api/v1/nothing-here")

    assert_problem(response, 404, "not_found")
    assert "Allow" not in response.headers


async def test_app_error_is_a_problem_with_its_status_code_detail_and_headers(
    failing_app: FastAPI, serve: Serve
) -> None:
    async with serve(failing_app) as client:
        response = await client.get("/test/slow-down")

    body = assert_problem(response, 429, "slow_down")
    assert body["detail"] == "Wait a little."
    assert response.headers["Retry-After"] == "7"


async def test_an_error_instance_carries_its_own_detail_headers_and_extra_members(
    settings: Settings, serve: Serve
) -> None:
    app = create_app(settings)

    @app.get("/test/quota")
    async def quota() -> None:
        raise SlowDown(
            "Quota spent.", headers={"Retry-After": "42"}, extra={"limit": 100, "status": 1}
        )

    async with serve(app) as client:
        response = await client.get("/test/quota")

    body = assert_problem(response, 429, "slow_down")
    assert body["detail"] == "Quota spent."
    assert body["limit"] == 100
    # Extra members never override the standard ones.
    assert body["status"] == 429
    assert response.headers["Retry-After"] == "42"


@pytest.mark.parametrize(
    ("content", "problem_type"),
    [
        (b'{"username": "ann", ', "json_invalid"),
        (b"username=ann&password=secret", "json_invalid"),
        (b"\xff\xfe\x00garbage", "json_invalid"),
        (b'{"username": "\x80"}', "body_unparseable"),
        (b"", "missing"),
        (b"[1, 2, 3]", "model_attributes_type"),
        (b"null", "model_attributes_type"),
    ],
)
async def test_a_json_body_that_does_not_parse_is_a_422_like_one_that_does_not_validate(
    client: httpx.AsyncClient, session: AsyncSession, content: bytes, problem_type: str
) -> None:
    response = await client.post(
        "/api/v1/users/", content=content, headers={"Content-Type": "application/json"}
    )

    body = assert_problem(response, 422, "validation_failed")
    assert body["errors"][0]["type"] == problem_type
    assert body["errors"][0]["loc"][0] == "body"
    assert await count_users(session) == 0


async def test_a_form_body_that_does_not_parse_is_a_422_problem(
    client: httpx.AsyncClient,
) -> None:
    response = await client.post(
        "/api/v1/auth/token",
        content=b"--nothing\r\nbroken",
        headers={"Content-Type": "multipart/form-data; boundary=x"},
    )

    body = assert_problem(response, 422, "validation_failed")
    assert body["errors"] == [
        {"loc": ["body"], "msg": "The body could not be parsed.", "type": "body_unparseable"}
    ]


async def test_a_body_with_very_many_problems_gets_a_bounded_answer_that_counts_them(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    # As many as fit in MAX_REQUEST_BODY_BYTES (1 MiB): about 800 kB.
    unknown_fields = {f"field{number}": number for number in range(40_000)}

    response = await client.post("/api/v1/users/", json={**NEW_USER, **unknown_fields})

    body = assert_problem(response, 422, "validation_failed")
    assert len(body["errors"]) == 20
    assert body["error_count"] == 40_000
    assert "40000 problems" in body["detail"]
    assert len(response.content) < 5_000
    assert await count_users(session) == 0


async def test_validation_errors_list_loc_msg_and_type_and_never_echo_the_input(
    client: httpx.AsyncClient,
) -> None:
    secret = "my-Secret-Passw0rd"
    # A missing field reports the whole body as its input, and so the password with it.
    response = await client.post(
        "/api/v1/users/", json={"email": "not-an-email", "password": secret}
    )

    body = assert_problem(response, 422, "validation_failed")
    assert secret not in response.text
    assert "not-an-email" not in response.text
    assert all(error.keys() == {"loc", "msg", "type"} for error in body["errors"])
    failed = {tuple(error["loc"]): error["type"] for error in body["errors"]}
    assert failed == {("body", "username"): "missing", ("body", "email"): "value_error"}


@pytest.mark.parametrize("password", ["hunter2", "Tr0ub4dor&3" * 12])
async def test_invalid_password_is_reported_without_its_value(
    client: httpx.AsyncClient, password: str
) -> None:
    response = await client.post("/api/v1/users/", json={**NEW_USER, "password": password})

    body = assert_problem(response, 422, "validation_failed")
    assert password not in response.text
    assert [error["loc"] for error in body["errors"]] == [["body", "password"]]


async def test_invalid_query_parameter_is_reported_without_its_value(
    client: httpx.AsyncClient,
) -> None:
    response = await client.get("/api/v1/posts/", params={"limit": "sekrit-value"})

    body = assert_problem(response, 422, "validation_failed")
    assert "sekrit-value" not in response.text
    assert body["errors"] == [
        {"loc": ["query", "limit"], "msg": body["errors"][0]["msg"], "type": "int_parsing"}
    ]


async def test_unhandled_exception_is_a_500_problem_with_the_request_id_and_no_internals(
    failing_app: FastAPI, serve: Serve
) -> None:
    async with serve(failing_app) as client:
        response = await client.get("/test/crash", headers={"X-Request-ID": "trace-500"})

    body = assert_problem(response, 500, "internal_error")
    assert response.headers["X-Request-ID"] == "trace-500"
    assert body["request_id"] == "trace-500"
    for leak in ("hunter2", "internal secret", "RuntimeError", "Traceback", "test_errors.py"):
        assert leak not in response.text
    assert float(response.headers["X-Process-Time"]) >= 0


async def test_unhandled_exception_is_logged_with_the_request_id_and_traceback(
    failing_app: FastAPI, serve: Serve
) -> None:
    async with serve(failing_app) as client:
        with capture_logs() as logs:
            response = await client.get("/test/crash", headers={"X-Request-ID": "trace-log"})

    assert response.status_code == 500
    [failure] = [entry for entry in logs if entry["event"] == "request.failed"]
    assert failure["request_id"] == "trace-log"
    assert failure["exc_info"] is True
    assert failure["log_level"] == "error"


@pytest.mark.parametrize(
    ("clash", "code"),
    [
        ({"username": "ANN", "email": "other@example.com"}, "username_taken"),
        ({"username": "other", "email": "ANN@example.com"}, "email_taken"),
    ],
)
async def test_unique_constraint_race_is_answered_like_the_check_it_raced_past(
    client: httpx.AsyncClient,
    session: AsyncSession,
    monkeypatch: pytest.MonkeyPatch,
    clash: dict[str, str],
    code: str,
) -> None:
    checked = await client.post("/api/v1/users/", json=NEW_USER)
    caught_by_the_check = await client.post("/api/v1/users/", json={**NEW_USER, **clash})

    async def nothing_taken(*_args: object, **_kwargs: object) -> list[User]:
        return []

    # The request passes the availability check, as one racing another can: the constraint decides.
    monkeypatch.setattr(users_repository, "find_taken", nothing_taken)
    raced = await client.post("/api/v1/users/", json={**NEW_USER, **clash})

    assert checked.status_code == 201, checked.text
    assert_problem(caught_by_the_check, 409, code)
    assert_problem(raced, 409, code)
    assert await count_users(session) == 1


async def test_an_integrity_error_no_constraint_maps_is_a_500_logged_without_the_row(
    settings: Settings, serve: Serve
) -> None:
    app = create_app(settings)

    @app.post("/test/user-without-email")
    async def user_without_email(session: SessionDep) -> None:
        # A bug: NOT NULL is no rule a client could have broken, so it is no 409.
        session.add(User(username="ann", username_key="ann", hashed_password="secret-hash-of-ann"))
        await session.flush()

    async with serve(app) as client:
        with capture_logs() as logs:
            response = await client.post(
                "/test/user-without-email", headers={"X-Request-ID": "trace-db"}
            )

    assert_problem(response, 500, "internal_error")
    [entry] = [entry for entry in logs if entry["event"] == "db.error"]
    assert entry["request_id"] == "trace-db"
    assert entry["log_level"] == "error"
    assert entry["error_type"] in {"IntegrityError", "NotNullViolationError"}
    assert "secret-hash-of-ann" not in repr(logs)
    assert "secret-hash-of-ann" not in response.text


async def test_locked_sqlite_database_is_a_503_problem_with_retry_after(
    backend: str, settings: Settings, serve: Serve
) -> None:
    if backend != "sqlite":
        pytest.skip("a file lock is SQLite's; PostgreSQL's unavailability is tested below")
    app = create_app(settings.model_copy(update={"SQLITE_BUSY_TIMEOUT_MS": 100}))
    path = make_url(settings.database_url).database
    assert path is not None

    async with serve(app) as client:
        locker = sqlite3.connect(path, isolation_level=None)
        try:
            locker.execute("BEGIN EXCLUSIVE")
            locked = await client.post("/api/v1/users/", json=NEW_USER)
        finally:
            locker.close()
        unlocked = await client.post("/api/v1/users/", json=NEW_USER)

    assert_problem(locked, 503, "database_unavailable")
    assert locked.headers["Retry-After"] == str(settings.RETRY_AFTER_SECONDS)
    assert unlocked.status_code == 201, unlocked.text


async def request_through(
    app: FastAPI, client: httpx.AsyncClient, database: Database, method: str, path: str
) -> httpx.Response:
    """A request served by `database` instead of the one the app started with.

    The app's lifespan succeeded against the test's database (it checks the schema there); then
    the database goes away, which is what `database` stands for: every request's session comes
    from `app.state.database`.
    """
    started_with = app.state.database
    app.state.database = database
    try:
        return await client.request(method, path, json=NEW_USER if method == "POST" else None)
    finally:
        app.state.database = started_with
        await database.dispose()


@pytest.mark.parametrize(
    ("method", "path"), [("POST", "/api/v1/users/"), ("GET", "/api/v1/posts/")]
)
@pytest.mark.usefixtures("database_down")
async def test_unreachable_database_is_a_503_problem_with_retry_after(
    client: httpx.AsyncClient, settings: Settings, method: str, path: str
) -> None:
    response = await client.request(method, path, json=NEW_USER if method == "POST" else None)

    assert_problem(response, 503, "database_unavailable")
    assert response.headers["Retry-After"] == str(settings.RETRY_AFTER_SECONDS)


async def test_database_host_that_does_not_resolve_is_a_503_problem(
    app: FastAPI, client: httpx.AsyncClient, settings: Settings, backend: str
) -> None:
    if backend != "postgresql":
        pytest.skip("a database server's host name")
    # As when the database's container is stopped: its name no longer resolves.
    unresolvable = "postgresql+asyncpg://postgres@quill-db.invalid/quill"
    down = Database(settings.model_copy(update={"DATABASE_URL": unresolvable}))

    response = await request_through(app, client, down, "GET", "/api/v1/posts/")

    assert_problem(response, 503, "database_unavailable")
    assert response.headers["Retry-After"] == str(settings.RETRY_AFTER_SECONDS)


async def test_database_that_refuses_new_connections_is_a_503_problem(
    app: FastAPI,
    client: httpx.AsyncClient,
    settings: Settings,
    backend: str,
    postgres: PostgresDatabases | None,
) -> None:
    if backend != "postgresql":
        pytest.skip("a database server's refusal")
    assert postgres is not None
    name = make_url(settings.database_url).database
    # As while the server starts, stops, or is full: it answers, and refuses the connection.
    async with postgres.admin.connect() as admin:
        await admin.exec_driver_sql(f"ALTER DATABASE {name} ALLOW_CONNECTIONS false")
    try:
        refusing = Database(settings)
        response = await request_through(app, client, refusing, "GET", "/api/v1/posts/")
    finally:
        async with postgres.admin.connect() as admin:
            await admin.exec_driver_sql(f"ALTER DATABASE {name} ALLOW_CONNECTIONS true")

    assert_problem(response, 503, "database_unavailable")
    assert response.headers["Retry-After"] == str(settings.RETRY_AFTER_SECONDS)
