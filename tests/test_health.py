import httpx
import pytest

from tests.helpers import assert_problem


@pytest.mark.usefixtures("database_down")
async def test_health_answers_ok_while_the_database_is_down(client: httpx.AsyncClient) -> None:
    health = await client.get("/health")
    posts = await client.get("/api/v1/posts/")

    assert health.status_code == 200
    assert health.json() == {"status": "ok"}
    assert health.headers["X-Request-ID"]
    # The same app, for a route that reads the database: the database is down indeed.
    assert_problem(posts, 503, "database_unavailable")
