"""Two Quill processes on two ports, sharing one PostgreSQL and one Redis, behave as one service:
what one spends, caches or rotates, the other sees at once."""

import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import TEST_REDIS_URL
from tests.factories import bearer
from tests.quill_process import QuillProcess, running_quill

PASSWORD = "a long password"
LOGIN_ATTEMPTS_PER_ADDRESS = 4


@pytest.fixture
def machines(
    backend: str, database_url: str, tmp_path: Path
) -> Iterator[tuple[QuillProcess, QuillProcess]]:
    if backend != "postgresql" or not TEST_REDIS_URL:
        pytest.skip(
            "two machines share PostgreSQL and Redis: set TEST_DATABASE_URL and TEST_REDIS_URL"
        )
    shared = {
        "ENVIRONMENT": "development",
        "DATABASE_URL": database_url,
        "REDIS_URL": TEST_REDIS_URL,
        "REDIS_KEY_PREFIX": f"quill-test:{uuid.uuid4().hex}:",
        "SECRET_KEY": "two-machines-share-this-secret-key-of-48-bytes!!",
        "LOG_JSON": "true",
        "RATE_LIMIT_LOGIN_ADDRESS": f"{LOGIN_ATTEMPTS_PER_ADDRESS}/hour",
        "PASSWORD_HASH_TIME_COST": "1",
        "PASSWORD_HASH_MEMORY_COST_KIB": "8",
        "PASSWORD_HASH_PARALLELISM": "1",
    }
    with (
        running_quill(tmp_path / "one", shared) as one,
        running_quill(tmp_path / "two", shared) as two,
    ):
        yield one, two


def sign_up_and_in(machine: QuillProcess, username: str) -> dict[str, str]:
    with httpx.Client(base_url=machine.url, timeout=10) as client:
        created = client.post(
            "/api/v1/users/",
            json={"username": username, "email": f"{username}@example.com", "password": PASSWORD},
        )
        assert created.status_code == 201, created.text
        tokens = client.post(
            "/api/v1/auth/token", data={"username": username, "password": PASSWORD}
        )
        assert tokens.status_code == 200, tokens.text
        pair: dict[str, str] = tokens.json()
        return pair


def test_a_post_edited_through_one_is_read_fresh_through_the_other(
    machines: tuple[QuillProcess, QuillProcess],
) -> None:
    one, two = machines
    tokens = sign_up_and_in(one, "ann")
    with (
        httpx.Client(base_url=one.url, timeout=10) as writer,
        httpx.Client(base_url=two.url, timeout=10) as reader,
    ):
        created = writer.post(
            "/api/v1/posts/",
            json={"title": "Shared", "content": "Version one."},
            headers=bearer(tokens["access_token"]),
        )
        assert created.status_code == 201, created.text
        url = f"/api/v1/posts/{created.json()['id']}"
        first = reader.get(url)
        assert reader.get(url, headers={"If-None-Match": first.headers["etag"]}).status_code == 304

        edited = writer.patch(
            url, json={"content": "Version two."}, headers=bearer(tokens["access_token"])
        )
        assert edited.status_code == 200

        fresh = reader.get(url, headers={"If-None-Match": first.headers["etag"]})
        assert fresh.status_code == 200
        assert fresh.json()["content"] == "Version two."
        assert fresh.headers["etag"] != first.headers["etag"]


def test_a_refresh_token_rotated_on_one_is_spent_on_the_other(
    machines: tuple[QuillProcess, QuillProcess],
) -> None:
    one, two = machines
    tokens = sign_up_and_in(one, "ben")
    with (
        httpx.Client(base_url=one.url, timeout=10) as first,
        httpx.Client(base_url=two.url, timeout=10) as second,
    ):
        rotated = first.post(
            "/api/v1/auth/refresh", json={"refresh_token": tokens["refresh_token"]}
        )
        assert rotated.status_code == 200, rotated.text
        replayed = second.post(
            "/api/v1/auth/refresh", json={"refresh_token": tokens["refresh_token"]}
        )
        assert replayed.status_code == 401


def test_a_rate_limit_spent_on_one_is_spent_on_the_other(
    machines: tuple[QuillProcess, QuillProcess],
) -> None:
    one, two = machines
    sign_up_and_in(one, "cat")  # one login attempt from this address, on the first machine
    statuses = []
    for attempt in range(LOGIN_ATTEMPTS_PER_ADDRESS):
        machine = two if attempt % 2 else one
        with httpx.Client(base_url=machine.url, timeout=10) as client:
            response = client.post(
                "/api/v1/auth/token", data={"username": "cat", "password": "wrong password"}
            )
        statuses.append(response.status_code)
    # One attempt at sign-in plus three here make four; the fifth, on either machine, is refused.
    assert statuses == [401, 401, 401, 429]
    with httpx.Client(base_url=two.url, timeout=10) as client:
        refused = client.post("/api/v1/auth/token", data={"username": "cat", "password": PASSWORD})
    assert refused.status_code == 429
    assert "retry-after" in refused.headers
