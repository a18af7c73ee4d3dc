"""A list's total: the sum of its authors' post_count where the list is chosen by author (all
posts, one author's, the feed), a count of its posts where it is chosen by tag or favorite."""

from datetime import datetime

import httpx
from fastapi import FastAPI
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.models import User
from tests.factories import auth_headers, make_user
from tests.helpers import recorded_statements

POSTS = "/api/v1/posts/"
FEED = "/api/v1/feed"


# A list: its path, its filters, and the caller's headers.
Listing = tuple[str, dict[str, str | int], dict[str, str]]


async def totals_and_lengths(
    client: httpx.AsyncClient, lists: dict[str, Listing]
) -> dict[str, tuple[int, int]]:
    """(total, items actually listed) of each list, read past the cached first page."""
    seen = {}
    for name, (path, filters, headers) in lists.items():
        response = await client.get(path, params={**filters, "limit": 100}, headers=headers)
        assert response.status_code == 200, response.text
        body = response.json()
        seen[name] = (body["total"], len(body["items"]))
    return seen


async def test_every_lists_total_follows_creates_deletes_and_hidden_authors(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    ann, bob, cat = [await make_user(session) for _ in range(3)]
    admin = await make_user(session, is_superuser=True)
    ann_headers, bob_headers, cat_headers = [
        await auth_headers(client, user) for user in (ann, bob, cat)
    ]
    admin_headers = await auth_headers(client, admin)
    created = []
    for headers, tags in ((ann_headers, ["garden"]), (ann_headers, []), (bob_headers, ["garden"])):
        response = await client.post(
            POSTS, json={"title": "A post", "content": "Text.", "tags": tags}, headers=headers
        )
        assert response.status_code == 201, response.text
        created.append(response.json()["id"])
    await client.put(f"/api/v1/users/{ann.id}/follow", headers=cat_headers)
    await client.put(f"{POSTS}{created[2]}/favorite", headers=cat_headers)
    lists: dict[str, Listing] = {
        "all": (POSTS, {}, {}),
        "all, as admin": (POSTS, {}, admin_headers),
        "ann's": (POSTS, {"author_id": ann.id}, {}),
        "ann's, under her URL": (f"/api/v1/users/{ann.id}/posts", {}, {}),
        "cat's feed": (FEED, {}, cat_headers),
        "tagged": (POSTS, {"tag": "garden"}, {}),
        "cat's favorites": (POSTS, {"favorited_by": cat.username}, {}),
    }

    assert await totals_and_lengths(client, lists) == {
        "all": (3, 3),
        "all, as admin": (3, 3),
        "ann's": (2, 2),
        "ann's, under her URL": (2, 2),
        "cat's feed": (2, 2),
        "tagged": (2, 2),
        "cat's favorites": (1, 1),
    }

    assert (await client.delete(f"{POSTS}{created[0]}", headers=ann_headers)).status_code == 204
    await session.execute(update(User).where(User.id == bob.id).values(is_active=False))
    await session.commit()

    assert await totals_and_lengths(client, lists) == {
        "all": (1, 1),
        "all, as admin": (2, 2),  # bob's post, hidden from others
        "ann's": (1, 1),
        "ann's, under her URL": (1, 1),
        "cat's feed": (1, 1),
        "tagged": (0, 0),
        "cat's favorites": (0, 0),
    }


async def test_a_list_by_author_never_counts_its_posts(
    app: FastAPI, client: httpx.AsyncClient, session: AsyncSession
) -> None:
    ann = await make_user(session)
    headers = await auth_headers(client, ann)
    await client.post(POSTS, json={"title": "A post", "content": "Text."}, headers=headers)

    with recorded_statements(app) as by_author:
        listed = await client.get(POSTS, params={"offset": 0, "limit": 5})
    with recorded_statements(app) as by_tag:
        tagged = await client.get(POSTS, params={"tag": "garden", "limit": 5})

    assert (listed.status_code, tagged.status_code) == (200, 200)
    assert [counting_posts(statement) for statement in selects(by_author)] == [False, False]
    assert [counting_posts(statement) for statement in selects(by_tag)] == [False, True]


def selects(statements: list[str]) -> list[str]:
    return [statement for statement in statements if statement.startswith("SELECT")]


def counting_posts(statement: str) -> bool:
    return statement.startswith("SELECT count(*)") and "FROM posts" in statement


async def test_writing_and_deleting_posts_is_no_edit_of_their_author(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    ann = await make_user(session)
    headers = await auth_headers(client, ann)
    statement = select(User.updated_at, User.post_count).where(User.id == ann.id)

    async def author() -> tuple[datetime, int]:
        await session.commit()  # a new snapshot for each read
        updated_at, post_count = (await session.execute(statement)).one()
        return updated_at, post_count

    before = await author()
    created = await client.post(
        POSTS, json={"title": "A post", "content": "Text."}, headers=headers
    )
    written = await author()
    deleted = await client.delete(created.headers["Location"], headers=headers)
    after = await author()

    assert (created.status_code, deleted.status_code) == (201, 204)
    assert [before, written, after] == [
        (before[0], 0),
        (before[0], 1),
        (before[0], 0),
    ]
