"""The posts API through HTTP: /api/v1/posts."""

import json
import re
import uuid
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import delete, func, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.config import CacheBackend, Settings
from app.main import create_app
from app.models import Post, User
from app.models.post import CONTENT_MAX_LENGTH, TITLE_MAX_LENGTH
from app.posts import repository as posts_repository
from app.posts import slugs
from tests.conftest import Serve
from tests.factories import auth_headers, make_post, make_user
from tests.helpers import (
    assert_problem,
    open_session,
    racing_an_uncommitted_change,
    recorded_statements,
)

POSTS = "/api/v1/posts/"
POST_FIELDS = {
    "id",
    "slug",
    "title",
    "description",
    "content",
    "tags",
    "author",
    "favorites_count",
    "favorited",
    "created_at",
    "updated_at",
}
UTC_ISO_8601 = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,6})?(Z|\+00:00)$")
MISSING_POST_ID = 999_999
WITHOUT_A_VALID_TOKEN = [
    pytest.param({}, "not_authenticated", id="no-token"),
    pytest.param({"Authorization": "Bearer not-a-jwt"}, "invalid_token", id="garbage-token"),
]
LONG_AGO = datetime(2020, 1, 1, tzinfo=UTC)


def post_url(post_id: int) -> str:
    return f"{POSTS}{post_id}"


def assert_utc_timestamp(value: str) -> datetime:
    assert UTC_ISO_8601.match(value), value
    parsed = datetime.fromisoformat(value)
    assert parsed.utcoffset() == timedelta(0)
    return parsed


def author_json(author: User, *, following: bool = False) -> dict[str, Any]:
    """A post's author as the API renders it."""
    return {
        "id": author.id,
        "username": author.username,
        "bio": author.bio,
        "image": author.image,
        "following": following,
    }


def as_json(post: Post, author: User) -> dict[str, Any]:
    """A post as the API renders it, from a row the test made."""
    return {
        "id": post.id,
        "slug": post.slug,
        "title": post.title,
        "description": post.description,
        "content": post.content,
        "tags": [],
        "author": author_json(author),
        "favorites_count": 0,
        "favorited": False,
        "created_at": post.created_at.isoformat().replace("+00:00", "Z"),
        "updated_at": post.updated_at.isoformat().replace("+00:00", "Z"),
    }


async def count_posts(session: AsyncSession) -> int:
    total = await session.scalar(select(func.count()).select_from(Post))
    await session.commit()  # end the read, so the app's writers are never kept waiting
    return total or 0


async def reload_post(session: AsyncSession, post_id: int) -> Post | None:
    """The row as the database holds it now, not as this session last saw it."""
    post = await session.scalar(
        select(Post).where(Post.id == post_id).execution_options(populate_existing=True)
    )
    await session.commit()
    return post


async def add_post_at(
    session: AsyncSession,
    author: User,
    created_at: datetime,
    *,
    post_id: int | None = None,
    title: str = "Old title",
    content: str = "Old content",
) -> Post:
    """A post made directly in the database, created (and last updated) at a given instant."""
    post = Post(
        id=post_id,
        title=title,
        slug=f"{slugs.base_of(title)}-{uuid.uuid4().hex[:8]}",
        content=content,
        author_id=author.id,
        created_at=created_at,
        updated_at=created_at,
    )
    session.add(post)
    await posts_repository.count_post_of(session, author.id, 1)
    await session.commit()
    return post


# --- POST /posts/ -------------------------------------------------------------------------------


async def test_create_post_returns_201_with_the_post_and_a_location_that_serves_it(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    ann = await make_user(session, username="ann")
    headers = await auth_headers(client, ann)

    response = await client.post(
        POSTS, json={"title": "First light", "content": "It begins."}, headers=headers
    )

    assert response.status_code == 201, response.text
    body = response.json()
    assert set(body) == POST_FIELDS
    assert isinstance(body["id"], int)
    assert body["title"] == "First light"
    assert body["content"] == "It begins."
    assert body["author"] == author_json(ann)
    assert body["created_at"] == body["updated_at"]
    assert response.headers["Location"].endswith(post_url(body["id"]))
    fetched = await client.get(response.headers["Location"])
    assert fetched.status_code == 200
    assert fetched.json() == body
    row = await reload_post(session, body["id"])
    assert row is not None
    assert (row.title, row.content, row.author_id) == ("First light", "It begins.", ann.id)


async def test_create_post_strips_white_space_around_the_title(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    headers = await auth_headers(client, await make_user(session))

    response = await client.post(
        POSTS,
        json={"title": "  \t Spaced out \n", "content": "  kept as written  "},
        headers=headers,
    )

    assert response.status_code == 201, response.text
    assert response.json()["title"] == "Spaced out"
    assert response.json()["content"] == "  kept as written  "
    row = await reload_post(session, response.json()["id"])
    assert row is not None
    assert row.title == "Spaced out"


@pytest.mark.parametrize(
    ("title", "content"),
    [
        pytest.param("t" * 200, "c", id="200-character-title"),
        pytest.param(" " + "t" * 198 + " ", "c", id="200-characters-with-the-space-around"),
        pytest.param("t", "c" * CONTENT_MAX_LENGTH, id="longest-content"),
        pytest.param("t", "c", id="one-character-each"),
        pytest.param("\N{GRINNING FACE}" * 200, "\N{GRINNING FACE}", id="200-emoji-title"),
    ],
)
async def test_create_post_accepts_title_and_content_at_their_limits(
    client: httpx.AsyncClient, session: AsyncSession, title: str, content: str
) -> None:
    headers = await auth_headers(client, await make_user(session))

    response = await client.post(POSTS, json={"title": title, "content": content}, headers=headers)

    assert response.status_code == 201, response.text
    assert response.json()["title"] == title.strip()
    assert response.json()["content"] == content
    assert await count_posts(session) == 1


async def test_the_largest_post_fits_the_body_limit_however_it_is_escaped(
    client: httpx.AsyncClient, session: AsyncSession, settings: Settings
) -> None:
    headers = await auth_headers(client, await make_user(session))
    emoji = "\N{GRINNING FACE}"
    post = {"title": emoji * TITLE_MAX_LENGTH, "content": emoji * CONTENT_MAX_LENGTH}
    body = json.dumps(post, ensure_ascii=True).encode()  # each emoji as \ud83d\ude00
    assert len(body) <= settings.MAX_REQUEST_BODY_BYTES

    response = await client.post(
        POSTS, content=body, headers={**headers, "Content-Type": "application/json"}
    )

    assert response.status_code == 201, response.text
    assert response.json()["content"] == post["content"]


@pytest.mark.parametrize(("headers", "code"), WITHOUT_A_VALID_TOKEN)
async def test_create_post_without_a_valid_token_is_401_and_creates_nothing(
    client: httpx.AsyncClient, session: AsyncSession, headers: dict[str, str], code: str
) -> None:
    response = await client.post(POSTS, json={"title": "t", "content": "c"}, headers=headers)

    assert_problem(response, 401, code)
    assert response.headers["WWW-Authenticate"] == "Bearer"
    assert await count_posts(session) == 0


@pytest.mark.parametrize(
    ("payload", "loc"),
    [
        pytest.param({"title": "", "content": "c"}, ["body", "title"], id="empty-title"),
        pytest.param({"title": " \t\n ", "content": "c"}, ["body", "title"], id="blank-title"),
        pytest.param({"title": "t" * 201, "content": "c"}, ["body", "title"], id="201-char-title"),
        pytest.param(
            {"title": " " + "t" * 200, "content": "c"}, ["body", "title"], id="201-with-a-space"
        ),
        pytest.param(
            {"title": "\x1c\u3000", "content": "c"}, ["body", "title"], id="unicode-blank"
        ),
        pytest.param({"title": "t", "content": ""}, ["body", "content"], id="empty-content"),
        pytest.param({"title": "t", "content": " \n\t "}, ["body", "content"], id="blank-content"),
        pytest.param(
            {"title": "t", "content": "c" * (CONTENT_MAX_LENGTH + 1)},
            ["body", "content"],
            id="content-too-long",
        ),
        pytest.param({"title": "t\x00", "content": "c"}, ["body", "title"], id="nul-in-title"),
        # Refused at once: a pattern that backtracked would spend a minute on it.
        pytest.param(
            {"title": "t", "content": "c" * 99_999 + "\x00"},
            ["body", "content"],
            id="long-then-nul",
        ),
        pytest.param({"title": "t", "content": "c\x00c"}, ["body", "content"], id="nul-in-content"),
        pytest.param({"content": "c"}, ["body", "title"], id="missing-title"),
        pytest.param({"title": "t"}, ["body", "content"], id="missing-content"),
        pytest.param({}, ["body", "title"], id="empty-object"),
        pytest.param(
            {"title": "t", "content": "c", "author_id": 1},
            ["body", "author_id"],
            id="unknown-field",
        ),
        pytest.param({"title": None, "content": "c"}, ["body", "title"], id="null-title"),
        pytest.param({"title": 123, "content": "c"}, ["body", "title"], id="number-title"),
        pytest.param({"title": "t", "content": ["c"]}, ["body", "content"], id="list-content"),
        pytest.param({"title": "t", "content": True}, ["body", "content"], id="boolean-content"),
        pytest.param(["t", "c"], ["body"], id="array-body"),
        pytest.param("title", ["body"], id="string-body"),
    ],
)
async def test_create_post_rejects_an_invalid_body_with_422_and_creates_nothing(
    client: httpx.AsyncClient, session: AsyncSession, payload: Any, loc: list[str]
) -> None:
    headers = await auth_headers(client, await make_user(session))

    response = await client.post(POSTS, json=payload, headers=headers)

    body = assert_problem(response, 422, "validation_failed")
    assert loc in [error["loc"] for error in body["errors"]]
    for error in body["errors"]:
        assert set(error) == {"loc", "msg", "type"}
    assert await count_posts(session) == 0


@pytest.mark.parametrize(
    "raw_body",
    [
        pytest.param(b'{"title": "t", "content": ', id="truncated"),
        pytest.param(b"{'title': 't', 'content': 'c'}", id="single-quotes"),
        pytest.param(b"not json at all", id="not-json"),
        pytest.param(b"", id="empty"),
        pytest.param(b'{"title": "\xff", "content": "c"}', id="invalid-utf-8"),
    ],
)
async def test_create_post_answers_malformed_json_with_a_422_problem(
    client: httpx.AsyncClient, session: AsyncSession, raw_body: bytes
) -> None:
    headers = await auth_headers(client, await make_user(session))

    response = await client.post(
        POSTS, content=raw_body, headers={**headers, "Content-Type": "application/json"}
    )

    body = assert_problem(response, 422, "validation_failed")
    assert body["errors"][0]["loc"][0] == "body"
    assert await count_posts(session) == 0


async def test_create_post_validation_errors_do_not_echo_the_submitted_values(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    headers = await auth_headers(client, await make_user(session))
    secret_title = "TOP-SECRET-TITLE-" * 12  # over 200 characters

    response = await client.post(
        POSTS,
        json={"title": secret_title, "content": "c", "extra": "SECRET-EXTRA"},
        headers=headers,
    )

    assert_problem(response, 422, "validation_failed")
    assert "TOP-SECRET-TITLE" not in response.text
    assert "SECRET-EXTRA" not in response.text


# --- GET /posts/ --------------------------------------------------------------------------------


async def test_list_posts_of_an_empty_database_is_an_empty_page(client: httpx.AsyncClient) -> None:
    response = await client.get(POSTS)

    assert response.status_code == 200
    assert response.json() == {"items": [], "total": 0, "limit": 20, "offset": 0}


async def test_list_posts_is_newest_first_and_pages_with_limit_and_offset(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    ann = await make_user(session, username="ann")
    base = datetime(2024, 5, 1, 12, tzinfo=UTC)
    posts = [await add_post_at(session, ann, base + timedelta(minutes=n)) for n in (2, 0, 4, 1, 3)]
    newest_first = sorted(posts, key=lambda post: post.created_at, reverse=True)

    full = await client.get(POSTS)
    page = await client.get(POSTS, params={"limit": 2, "offset": 1})

    assert full.status_code == 200
    assert full.json() == {
        "items": [as_json(post, ann) for post in newest_first],
        "total": 5,
        "limit": 20,
        "offset": 0,
    }
    assert page.status_code == 200
    assert page.json() == {
        "items": [as_json(post, ann) for post in newest_first[1:3]],
        "total": 5,
        "limit": 2,
        "offset": 1,
    }


async def test_list_posts_breaks_created_at_ties_by_id_descending(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    ann = await make_user(session, username="ann")
    bob = await make_user(session, username="bob")
    instant = datetime(2024, 5, 1, 12, 0, 0, 123456, tzinfo=UTC)
    # Ids given out of order, so neither insertion order nor heap order matches the answer.
    for post_id, author in [(13, ann), (11, bob), (14, bob), (12, ann)]:
        await add_post_at(session, author, instant, post_id=post_id)
    await add_post_at(session, ann, instant + timedelta(microseconds=1), post_id=10)
    await add_post_at(session, bob, instant - timedelta(microseconds=1), post_id=15)
    expected = [10, 14, 13, 12, 11, 15]
    # With statistics, the planner sorts the heap rather than walk the (created_at, id) index,
    # whose order would hide a missing tie-breaker.
    await session.execute(text("ANALYZE posts"))
    await session.commit()

    whole = await client.get(POSTS)
    one_by_one = [(await client.get(POSTS, params={"limit": 1, "offset": n})) for n in range(6)]

    assert whole.status_code == 200
    assert [item["id"] for item in whole.json()["items"]] == expected
    assert all(response.status_code == 200 for response in one_by_one)
    assert [response.json()["items"][0]["id"] for response in one_by_one] == expected


async def test_list_posts_defaults_to_20_items(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    ann = await make_user(session)
    session.add_all(
        Post(title=f"Post {n}", slug=f"post-{n}", content="c", author_id=ann.id) for n in range(21)
    )
    await posts_repository.count_post_of(session, ann.id, 21)
    await session.commit()

    response = await client.get(POSTS)

    assert response.status_code == 200
    body = response.json()
    assert (len(body["items"]), body["total"], body["limit"], body["offset"]) == (20, 21, 20, 0)


@pytest.mark.parametrize("limit", [1, 100])
async def test_list_posts_accepts_limits_from_1_to_100(
    client: httpx.AsyncClient, session: AsyncSession, limit: int
) -> None:
    ann = await make_user(session)
    for _ in range(2):
        await make_post(session, ann)

    response = await client.get(POSTS, params={"limit": limit})

    assert response.status_code == 200
    body = response.json()
    assert (len(body["items"]), body["total"], body["limit"]) == (min(limit, 2), 2, limit)


@pytest.mark.parametrize(
    ("params", "loc"),
    [
        pytest.param({"limit": "0"}, ["query", "limit"], id="limit-0"),
        pytest.param({"limit": "101"}, ["query", "limit"], id="limit-101"),
        pytest.param({"limit": "-1"}, ["query", "limit"], id="limit-negative"),
        pytest.param({"limit": "x"}, ["query", "limit"], id="limit-not-a-number"),
        pytest.param({"offset": "-1"}, ["query", "offset"], id="offset-negative"),
        pytest.param({"offset": "x"}, ["query", "offset"], id="offset-not-a-number"),
        pytest.param({"offset": str(2**63)}, ["query", "offset"], id="offset-huge"),
        pytest.param({"author_id": "0"}, ["query", "author_id"], id="author-id-0"),
        pytest.param({"author_id": "x"}, ["query", "author_id"], id="author-id-not-a-number"),
        pytest.param({"author_id": str(2**31)}, ["query", "author_id"], id="author-id-huge"),
    ],
)
async def test_list_posts_rejects_out_of_range_query_parameters_with_422(
    client: httpx.AsyncClient, params: dict[str, str], loc: list[str]
) -> None:
    response = await client.get(POSTS, params=params)

    body = assert_problem(response, 422, "validation_failed")
    assert [error["loc"] for error in body["errors"]] == [loc]


async def test_list_posts_filters_by_author_and_counts_only_their_posts(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    ann = await make_user(session, username="ann")
    bob = await make_user(session, username="bob")
    anns = [await make_post(session, ann) for _ in range(3)]
    for _ in range(2):
        await make_post(session, bob)

    response = await client.get(POSTS, params={"author_id": ann.id, "limit": 2})

    assert response.status_code == 200
    body = response.json()
    assert body["total"] == 3
    assert (body["limit"], body["offset"]) == (2, 0)
    assert [item["id"] for item in body["items"]] == [anns[2].id, anns[1].id]
    assert all(item["author"] == author_json(ann) for item in body["items"])


async def test_list_posts_of_an_author_without_posts_is_empty(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    ann = await make_user(session)
    await make_post(session, ann)

    response = await client.get(POSTS, params={"author_id": MISSING_POST_ID})

    assert response.status_code == 200
    assert response.json() == {"items": [], "total": 0, "limit": 20, "offset": 0}


async def test_list_posts_offset_past_the_end_returns_no_items_and_the_total(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    ann = await make_user(session)
    for _ in range(3):
        await make_post(session, ann)

    response = await client.get(POSTS, params={"offset": 3})

    assert response.status_code == 200
    assert response.json() == {"items": [], "total": 3, "limit": 20, "offset": 3}


async def count_statements_while_listing(app: FastAPI, client: httpx.AsyncClient) -> int:
    with recorded_statements(app) as statements:
        response = await client.get(POSTS)
    assert response.status_code == 200
    authors = {item["author"]["id"] for item in response.json()["items"]}
    assert len(authors) == len(response.json()["items"])
    return len(statements)


async def test_listing_posts_by_many_authors_costs_a_constant_number_of_statements(
    serve: Serve, settings: Settings
) -> None:
    # What the database does: the rows are written behind the app's back, so no response cache.
    app = create_app(settings.model_copy(update={"CACHE_BACKEND": CacheBackend.OFF}))
    async with serve(app) as client, open_session(app.state.database) as session:
        await _list_with_2_then_20_authors(app, client, session)


async def _list_with_2_then_20_authors(
    app: FastAPI, client: httpx.AsyncClient, session: AsyncSession
) -> None:
    for _ in range(2):
        await make_post(session, await make_user(session))
    with_2_posts = await count_statements_while_listing(app, client)
    for _ in range(18):
        await make_post(session, await make_user(session))

    with_20_posts = await count_statements_while_listing(app, client)

    assert 0 < with_2_posts <= 4  # a page, a count, and on SQLite the BEGIN
    assert with_20_posts == with_2_posts
    assert len((await client.get(POSTS)).json()["items"]) == 20


# --- GET /posts/{post_id} -----------------------------------------------------------------------


async def test_get_post_returns_the_post_with_its_author(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    ann = await make_user(session, username="ann")
    post = await make_post(session, ann, title="Hello", content="World")

    response = await client.get(post_url(post.id))

    assert response.status_code == 200
    assert response.json() == as_json(post, ann)


async def test_get_missing_post_is_a_404_post_not_found_problem(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    post = await make_post(session, await make_user(session))

    response = await client.get(post_url(post.id + 1))

    assert_problem(response, 404, "post_not_found")


@pytest.mark.parametrize("post_id", ["0", "-1", str(2**31), str(10**30), "abc", "1.5"])
async def test_get_post_rejects_ids_out_of_range_with_422(
    client: httpx.AsyncClient, post_id: str
) -> None:
    response = await client.get(f"{POSTS}{post_id}")

    body = assert_problem(response, 422, "validation_failed")
    assert [error["loc"] for error in body["errors"]] == [["path", "post_id"]]


# --- PATCH /posts/{post_id} ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        pytest.param({"title": "New title"}, ("New title", "Old content"), id="title-only"),
        pytest.param({"content": "New content"}, ("Old title", "New content"), id="content-only"),
        pytest.param(
            {"title": "  New title ", "content": "New content"},
            ("New title", "New content"),
            id="both",
        ),
    ],
)
async def test_author_can_update_their_post_partially(
    client: httpx.AsyncClient,
    session: AsyncSession,
    changes: dict[str, str],
    expected: tuple[str, str],
) -> None:
    ann = await make_user(session, username="ann")
    post = await add_post_at(session, ann, LONG_AGO)

    response = await client.patch(
        post_url(post.id), json=changes, headers=await auth_headers(client, ann)
    )

    assert response.status_code == 200, response.text
    body = response.json()
    assert set(body) == POST_FIELDS
    assert (body["id"], body["title"], body["content"]) == (post.id, *expected)
    assert body["author"] == author_json(ann)
    row = await reload_post(session, post.id)
    assert row is not None
    assert (row.title, row.content) == expected


async def test_update_advances_updated_at_and_keeps_created_at(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    ann = await make_user(session)
    post = await add_post_at(session, ann, LONG_AGO)
    headers = await auth_headers(client, ann)

    response = await client.patch(post_url(post.id), json={"title": "Later"}, headers=headers)

    assert response.status_code == 200, response.text
    body = response.json()
    assert body["created_at"] == "2020-01-01T00:00:00Z"
    assert assert_utc_timestamp(body["updated_at"]) > LONG_AGO
    row = await reload_post(session, post.id)
    assert row is not None
    assert row.created_at == LONG_AGO
    assert row.updated_at == assert_utc_timestamp(body["updated_at"])
    assert (await client.get(post_url(post.id))).json() == body


async def test_superuser_can_update_another_authors_post(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    ann = await make_user(session, username="ann")
    admin = await make_user(session, username="admin", is_superuser=True)
    post = await make_post(session, ann, title="Ann's")

    response = await client.patch(
        post_url(post.id), json={"title": "Moderated"}, headers=await auth_headers(client, admin)
    )

    assert response.status_code == 200, response.text
    assert response.json()["title"] == "Moderated"
    assert response.json()["author"] == author_json(ann)
    row = await reload_post(session, post.id)
    assert row is not None
    assert (row.title, row.author_id) == ("Moderated", ann.id)


async def test_author_cannot_edit_another_authors_post(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    ann = await make_user(session)
    bob = await make_user(session)
    post = await add_post_at(session, ann, LONG_AGO)

    response = await client.patch(
        post_url(post.id),
        json={"title": "Hijacked", "content": "Hijacked"},
        headers=await auth_headers(client, bob),
    )

    assert_problem(response, 403, "not_post_author")
    row = await reload_post(session, post.id)
    assert row is not None
    assert (row.title, row.content, row.updated_at) == (post.title, post.content, LONG_AGO)


@pytest.mark.parametrize(("headers", "code"), WITHOUT_A_VALID_TOKEN)
@pytest.mark.parametrize("exists", [True, False], ids=["existing-post", "missing-post"])
async def test_update_without_a_valid_token_is_401_even_for_a_missing_post(
    client: httpx.AsyncClient,
    session: AsyncSession,
    headers: dict[str, str],
    code: str,
    exists: bool,
) -> None:
    post = await add_post_at(session, await make_user(session), LONG_AGO)
    post_id = post.id if exists else MISSING_POST_ID

    response = await client.patch(post_url(post_id), json={"title": "Anon"}, headers=headers)

    assert_problem(response, 401, code)
    assert response.headers["WWW-Authenticate"] == "Bearer"
    row = await reload_post(session, post.id)
    assert row is not None
    assert (row.title, row.updated_at) == (post.title, LONG_AGO)


async def test_update_of_a_missing_post_with_a_token_is_404(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    headers = await auth_headers(client, await make_user(session, is_superuser=True))

    response = await client.patch(post_url(MISSING_POST_ID), json={"title": "x"}, headers=headers)

    assert_problem(response, 404, "post_not_found")
    assert await count_posts(session) == 0


@pytest.mark.parametrize(
    ("payload", "loc"),
    [
        pytest.param({"title": None}, ["body", "title"], id="null-title"),
        pytest.param({"content": None}, ["body", "content"], id="null-content"),
        pytest.param({"title": ""}, ["body", "title"], id="empty-title"),
        pytest.param({"title": "   "}, ["body", "title"], id="blank-title"),
        pytest.param({"title": "t" * 201}, ["body", "title"], id="201-char-title"),
        pytest.param({"content": " "}, ["body", "content"], id="blank-content"),
        pytest.param(
            {"content": "c" * (CONTENT_MAX_LENGTH + 1)}, ["body", "content"], id="content-too-long"
        ),
        pytest.param({"content": "\x00"}, ["body", "content"], id="nul-in-content"),
        pytest.param({"title": 5}, ["body", "title"], id="number-title"),
        pytest.param({"author_id": 2}, ["body", "author_id"], id="unknown-field-author-id"),
        pytest.param(
            {"title": "ok", "created_at": "2000-01-01T00:00:00Z"},
            ["body", "created_at"],
            id="unknown-field-created-at",
        ),
    ],
)
async def test_update_rejects_an_invalid_body_with_422_and_changes_nothing(
    client: httpx.AsyncClient, session: AsyncSession, payload: dict[str, Any], loc: list[str]
) -> None:
    ann = await make_user(session)
    await make_user(session)
    post = await add_post_at(session, ann, LONG_AGO)

    response = await client.patch(
        post_url(post.id), json=payload, headers=await auth_headers(client, ann)
    )

    body = assert_problem(response, 422, "validation_failed")
    assert loc in [error["loc"] for error in body["errors"]]
    row = await reload_post(session, post.id)
    assert row is not None
    assert (row.title, row.content, row.author_id, row.created_at, row.updated_at) == (
        post.title,
        post.content,
        ann.id,
        LONG_AGO,
        LONG_AGO,
    )


# --- DELETE /posts/{post_id} --------------------------------------------------------------------


@pytest.mark.parametrize("as_superuser", [False, True], ids=["author", "superuser"])
async def test_author_and_superuser_can_delete_a_post(
    client: httpx.AsyncClient, session: AsyncSession, as_superuser: bool
) -> None:
    ann = await make_user(session)
    admin = await make_user(session, is_superuser=True)
    post = await make_post(session, ann)
    other = await make_post(session, ann)
    caller = admin if as_superuser else ann

    response = await client.delete(post_url(post.id), headers=await auth_headers(client, caller))

    assert response.status_code == 204, response.text
    assert response.content == b""
    assert await reload_post(session, post.id) is None
    assert await reload_post(session, other.id) is not None
    assert_problem(await client.get(post_url(post.id)), 404, "post_not_found")


async def test_author_cannot_delete_another_authors_post(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    ann = await make_user(session)
    bob = await make_user(session)
    post = await make_post(session, ann)

    response = await client.delete(post_url(post.id), headers=await auth_headers(client, bob))

    assert_problem(response, 403, "not_post_author")
    assert await reload_post(session, post.id) is not None
    assert (await client.get(post_url(post.id))).status_code == 200


@pytest.mark.parametrize(("headers", "code"), WITHOUT_A_VALID_TOKEN)
@pytest.mark.parametrize("exists", [True, False], ids=["existing-post", "missing-post"])
async def test_delete_without_a_valid_token_is_401_even_for_a_missing_post(
    client: httpx.AsyncClient,
    session: AsyncSession,
    headers: dict[str, str],
    code: str,
    exists: bool,
) -> None:
    post = await make_post(session, await make_user(session))

    response = await client.delete(
        post_url(post.id if exists else MISSING_POST_ID), headers=headers
    )

    assert_problem(response, 401, code)
    assert response.headers["WWW-Authenticate"] == "Bearer"
    assert await count_posts(session) == 1


async def test_delete_of_a_missing_post_with_a_token_is_404(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    ann = await make_user(session)
    await make_post(session, ann)

    response = await client.delete(
        post_url(MISSING_POST_ID), headers=await auth_headers(client, ann)
    )

    assert_problem(response, 404, "post_not_found")
    assert await count_posts(session) == 1


# --- Timestamps ---------------------------------------------------------------------------------


async def test_timestamps_are_utc_iso_8601_with_a_zero_offset_everywhere(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    headers = await auth_headers(client, await make_user(session))

    created = await client.post(POSTS, json={"title": "t", "content": "c"}, headers=headers)
    assert created.status_code == 201
    post_id = created.json()["id"]
    fetched = await client.get(post_url(post_id))
    listed = await client.get(POSTS)
    updated = await client.patch(post_url(post_id), json={"content": "d"}, headers=headers)

    assert (fetched.status_code, listed.status_code, updated.status_code) == (200, 200, 200)
    bodies = [created.json(), fetched.json(), listed.json()["items"][0], updated.json()]
    for body in bodies:
        assert_utc_timestamp(body["created_at"])
        assert_utc_timestamp(body["updated_at"])
    # What the app answered before the row was read back is what the database gives back.
    assert fetched.json()["created_at"] == created.json()["created_at"]
    assert listed.json()["items"][0]["created_at"] == created.json()["created_at"]
    assert updated.json()["created_at"] == created.json()["created_at"]


async def test_a_stored_timestamp_is_answered_exactly_in_utc(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    ann = await make_user(session)
    paris_summer = timezone(timedelta(hours=2))
    post = await add_post_at(session, ann, datetime(2024, 7, 1, 14, 30, 5, 123456, paris_summer))

    response = await client.get(post_url(post.id))

    assert response.status_code == 200
    assert UTC_ISO_8601.match(response.json()["created_at"])
    assert datetime.fromisoformat(response.json()["created_at"]) == datetime(
        2024, 7, 1, 12, 30, 5, 123456, UTC
    )
    assert response.json()["created_at"].startswith("2024-07-01T12:30:05.123456")


@pytest.mark.usefixtures("postgresql_only")
async def test_an_edit_racing_the_posts_deletion_waits_for_it_and_finds_it_gone(
    client: httpx.AsyncClient, session: AsyncSession, database_url: str
) -> None:
    author = await make_user(session, username="ann")
    post = await make_post(session, author)
    headers = await auth_headers(client, author)

    response = await racing_an_uncommitted_change(
        database_url,
        delete(Post).where(Post.id == post.id),
        client.patch(post_url(post.id), json={"title": "Too late"}, headers=headers),
    )

    assert_problem(response, 404, "post_not_found")
    assert await count_posts(session) == 0


@pytest.mark.usefixtures("postgresql_only")
async def test_writing_a_post_while_its_author_is_deleted_is_a_401_not_a_crash(
    client: httpx.AsyncClient, session: AsyncSession, database_url: str
) -> None:
    author = await make_user(session, username="ann")
    headers = await auth_headers(client, author)

    response = await racing_an_uncommitted_change(
        database_url,
        delete(User).where(User.id == author.id),
        client.post(POSTS, json={"title": "t", "content": "c"}, headers=headers),
    )

    assert_problem(response, 401, "invalid_token")
    assert await count_posts(session) == 0
