"""Numbers in URLs (app/core/ids.py, app/core/pagination.py) through HTTP: ids, limit, offset and
author_id accept canonical decimal digits only, so each resource and page has exactly one URL."""

from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.ids import MAX_ROW_ID
from app.core.pagination import MAX_OFFSET, MAX_PAGE_SIZE
from app.models import Post, User
from tests.factories import auth_headers, make_post, make_user
from tests.helpers import assert_problem

# What the HTTP layer decides, the same on either database: run on SQLite alone (the
# `http_layer` marker, tests/conftest.py).
pytestmark = pytest.mark.http_layer

# Written as they go into the URL: %20 is a space, %D9%A1 the Arabic-Indic digit one.
NON_CANONICAL_IDS = [
    pytest.param("1.0", id="decimal-point"),
    pytest.param("+1", id="plus-sign"),
    pytest.param("%201", id="leading-space"),
    pytest.param("1%20", id="trailing-space"),
    pytest.param("1_0", id="underscore"),
    pytest.param("01", id="leading-zero"),
    pytest.param("%D9%A1", id="non-ascii-digit"),
    pytest.param("0", id="zero"),
    pytest.param("-1", id="negative"),
    pytest.param(str(2**31), id="beyond-max-row-id"),
]


@dataclass(frozen=True)
class IdRoute:
    method: str
    path: str
    param: str
    json: dict[str, Any] | None
    success: int


ID_ROUTES = [
    pytest.param(IdRoute("GET", "/api/v1/posts/{}", "post_id", None, 200), id="get-post"),
    pytest.param(
        IdRoute("PATCH", "/api/v1/posts/{}", "post_id", {"title": "Changed"}, 200),
        id="update-post",
    ),
    pytest.param(IdRoute("DELETE", "/api/v1/posts/{}", "post_id", None, 204), id="delete-post"),
    pytest.param(IdRoute("GET", "/api/v1/users/{}", "user_id", None, 200), id="get-user"),
    pytest.param(
        IdRoute("GET", "/api/v1/users/{}/posts", "user_id", None, 200), id="list-user-posts"
    ),
    pytest.param(
        IdRoute("PATCH", "/api/v1/users/{}", "user_id", {"is_active": False}, 200),
        id="administer-user",
    ),
    pytest.param(IdRoute("DELETE", "/api/v1/users/{}", "user_id", None, 204), id="delete-user"),
]

LIST_ROUTES = [
    pytest.param("/api/v1/posts/", id="posts"),
    pytest.param("/api/v1/users/{}/posts", id="user-posts"),
    pytest.param("/api/v1/users/", id="users"),
]
NON_CANONICAL_PAGING = [
    pytest.param("limit", "+5", id="limit-plus-sign"),
    pytest.param("limit", "%2B5", id="limit-encoded-plus-sign"),
    pytest.param("limit", "5.0", id="limit-decimal-point"),
    pytest.param("limit", "05", id="limit-leading-zero"),
    pytest.param("limit", "1_0", id="limit-underscore"),
    pytest.param("limit", "%205", id="limit-leading-space"),
    pytest.param("limit", "", id="limit-empty"),
    pytest.param("offset", "01", id="offset-leading-zero"),
    pytest.param("offset", "00", id="offset-zeros"),
    pytest.param("offset", "-0", id="offset-negative-zero"),
    pytest.param("offset", "+20", id="offset-plus-sign"),
    pytest.param("offset", "20.0", id="offset-decimal-point"),
    pytest.param("offset", "2_0", id="offset-underscore"),
    pytest.param("offset", "%2020", id="offset-leading-space"),
]
NON_CANONICAL_AUTHOR_IDS = [
    pytest.param("1.0", id="decimal-point"),
    pytest.param("%2B1", id="plus-sign"),
    pytest.param("01", id="leading-zero"),
    pytest.param("1_0", id="underscore"),
    pytest.param("%201", id="leading-space"),
    pytest.param("0", id="zero"),
    pytest.param(str(2**31), id="beyond-max-row-id"),
]


@dataclass(frozen=True)
class Rows:
    author: User
    post: Post
    admin_headers: dict[str, str]


@pytest.fixture
async def rows(client: httpx.AsyncClient, session: AsyncSession) -> Rows:
    """A user with a post (made first, so on a fresh database "1" names both) and an admin."""
    author = await make_user(session, username="ann")
    post = await make_post(session, author, title="Original")
    admin = await make_user(session, username="root", is_superuser=True)
    return Rows(author, post, await auth_headers(client, admin))


def target_id(route: IdRoute, rows: Rows) -> int:
    return rows.post.id if route.param == "post_id" else rows.author.id


async def stored(session: AsyncSession, rows: Rows) -> tuple[str | None, bool | None]:
    """The post's title and the author's is_active as committed now (None: the row is gone)."""
    post = await session.scalar(
        select(Post).where(Post.id == rows.post.id).execution_options(populate_existing=True)
    )
    author = await session.scalar(
        select(User).where(User.id == rows.author.id).execution_options(populate_existing=True)
    )
    await session.commit()  # end the read: an open SQLite transaction would hold up the app
    return (post.title if post else None, author.is_active if author else None)


def assert_invalid_number(response: httpx.Response, location: list[str]) -> None:
    body = assert_problem(response, 422, "validation_failed")
    assert [error["loc"] for error in body["errors"]] == [location]
    assert all(set(error) == {"loc", "msg", "type"} for error in body["errors"])


@pytest.mark.parametrize("raw_id", NON_CANONICAL_IDS)
@pytest.mark.parametrize("route", ID_ROUTES)
async def test_every_id_route_refuses_a_non_canonical_id_with_422(
    client: httpx.AsyncClient, session: AsyncSession, rows: Rows, route: IdRoute, raw_id: str
) -> None:
    response = await client.request(
        route.method, route.path.format(raw_id), json=route.json, headers=rows.admin_headers
    )

    assert_invalid_number(response, ["path", route.param])
    assert await stored(session, rows) == ("Original", True)


@pytest.mark.parametrize("route", ID_ROUTES)
async def test_every_id_route_serves_the_canonical_id(
    client: httpx.AsyncClient, rows: Rows, route: IdRoute
) -> None:
    url = route.path.format(target_id(route, rows))

    response = await client.request(route.method, url, json=route.json, headers=rows.admin_headers)

    assert response.status_code == route.success, response.text
    if route.method == "GET" and route.path.endswith("/posts"):
        assert [item["id"] for item in response.json()["items"]] == [rows.post.id]
    elif route.method != "DELETE":
        assert response.json()["id"] == target_id(route, rows)


@pytest.mark.parametrize(("name", "raw"), NON_CANONICAL_PAGING)
@pytest.mark.parametrize("path", LIST_ROUTES)
async def test_every_list_refuses_non_canonical_paging_with_422(
    client: httpx.AsyncClient, rows: Rows, path: str, name: str, raw: str
) -> None:
    response = await client.get(
        f"{path.format(rows.author.id)}?{name}={raw}", headers=rows.admin_headers
    )

    assert_invalid_number(response, ["query", name])


@pytest.mark.parametrize("raw", NON_CANONICAL_AUTHOR_IDS)
async def test_post_list_refuses_a_non_canonical_author_id_with_422(
    client: httpx.AsyncClient, rows: Rows, raw: str
) -> None:
    response = await client.get(f"/api/v1/posts/?author_id={raw}")

    assert_invalid_number(response, ["query", "author_id"])


async def test_post_list_serves_canonical_paging_and_author_id(
    client: httpx.AsyncClient, rows: Rows
) -> None:
    response = await client.get(f"/api/v1/posts/?limit=1&offset=0&author_id={rows.author.id}")

    assert response.status_code == 200, response.text
    body = response.json()
    assert [item["id"] for item in body["items"]] == [rows.post.id]
    assert (body["total"], body["limit"], body["offset"]) == (1, 1, 0)


async def test_openapi_documents_every_number_in_a_url_as_a_bounded_integer(
    client: httpx.AsyncClient,
) -> None:
    bounds = {
        "post_id": (1, MAX_ROW_ID),
        "user_id": (1, MAX_ROW_ID),
        "author_id": (1, MAX_ROW_ID),
        "limit": (1, MAX_PAGE_SIZE),
        "offset": (0, MAX_OFFSET),
    }

    response = await client.get("/openapi.json")

    assert response.status_code == 200
    documented = [
        parameter
        for path_item in response.json()["paths"].values()
        for operation in path_item.values()
        for parameter in operation.get("parameters", [])
        if parameter["name"] in bounds
    ]
    assert {parameter["name"] for parameter in documented} == set(bounds)
    for parameter in documented:
        schema = parameter["schema"]
        integer = schema["anyOf"][0] if "anyOf" in schema else schema
        low, high = bounds[parameter["name"]]
        assert integer == integer | {"type": "integer", "minimum": low, "maximum": high}
        assert not {"ge", "le"} & (set(schema) | set(integer)), parameter
