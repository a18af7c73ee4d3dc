"""Comments through HTTP: /api/v1/posts/{post_id}/comments, and the comments service by slug."""

from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.comments import service as comments_service
from app.comments.errors import CommentNotFound, NotCommentAuthor
from app.models import Comment, Post, User
from app.posts.errors import PostNotFound
from tests.factories import auth_headers, make_post, make_user
from tests.helpers import assert_problem, count_rows, open_session

WITHOUT_A_VALID_TOKEN = [
    pytest.param({}, "not_authenticated", id="no-token"),
    pytest.param({"Authorization": "Bearer not-a-jwt"}, "invalid_token", id="garbage-token"),
]


def comments_url(post_id: int) -> str:
    return f"/api/v1/posts/{post_id}/comments"


async def count_comments(session: AsyncSession) -> int:
    return await count_rows(session, select(func.count()).select_from(Comment))


async def add(
    client: httpx.AsyncClient, post: Post, headers: dict[str, str], body: str = "Nice."
) -> dict[str, Any]:
    response = await client.post(comments_url(post.id), json={"body": body}, headers=headers)
    assert response.status_code == 201, response.text
    added: dict[str, Any] = response.json()
    return added


async def test_add_comment_answers_201_with_the_comment_and_its_author(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    ann = await make_user(session, username="ann", bio="Reads.")
    post = await make_post(session, await make_user(session))

    response = await client.post(
        comments_url(post.id), json={"body": "Thank you!"}, headers=await auth_headers(client, ann)
    )

    assert response.status_code == 201, response.text
    comment = response.json()
    assert set(comment) == {"id", "post_id", "body", "author", "created_at", "updated_at"}
    assert (comment["post_id"], comment["body"]) == (post.id, "Thank you!")
    assert comment["author"] == {
        "id": ann.id,
        "username": "ann",
        "bio": "Reads.",
        "image": None,
        "following": False,
    }
    assert response.headers["Location"].endswith(comments_url(post.id))


async def test_comments_are_listed_oldest_first_and_paginated(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    post = await make_post(session, await make_user(session))
    headers = await auth_headers(client, await make_user(session))
    added = [await add(client, post, headers, f"Comment {n}") for n in range(3)]

    first = await client.get(comments_url(post.id), params={"limit": 2})
    rest = await client.get(comments_url(post.id), params={"limit": 2, "offset": 2})

    assert first.status_code == 200
    assert [c["id"] for c in first.json()["items"]] == [added[0]["id"], added[1]["id"]]
    assert [c["id"] for c in rest.json()["items"]] == [added[2]["id"]]
    assert first.json()["total"] == rest.json()["total"] == 3
    for params in ({"limit": 0}, {"limit": 101}, {"offset": -1}):
        response = await client.get(comments_url(post.id), params=params)
        assert_problem(response, 422, "validation_failed")


async def test_comments_of_a_missing_or_hidden_post_are_404(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    hidden = await make_post(session, await make_user(session, is_active=False))

    assert_problem(await client.get(comments_url(999_999)), 404, "post_not_found")
    assert_problem(await client.get(comments_url(hidden.id)), 404, "post_not_found")


async def test_a_deactivated_users_comments_are_hidden_except_from_administrators(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    post = await make_post(session, await make_user(session))
    gone = await make_user(session, username="gone")
    await add(client, post, await auth_headers(client, gone))
    admin = await make_user(session, username="root", is_superuser=True)
    gone.is_active = False
    await session.commit()

    anyone = await client.get(comments_url(post.id))
    administrator = await client.get(
        comments_url(post.id), headers=await auth_headers(client, admin)
    )

    assert anyone.json()["total"] == 0
    assert administrator.json()["total"] == 1


@pytest.mark.parametrize(("headers", "code"), WITHOUT_A_VALID_TOKEN)
async def test_writing_comments_needs_a_valid_token_before_anything_else(
    client: httpx.AsyncClient, session: AsyncSession, headers: dict[str, str], code: str
) -> None:
    assert_problem(
        await client.post(comments_url(999_999), json={"body": "x"}, headers=headers), 401, code
    )
    assert_problem(await client.delete(f"{comments_url(999_999)}/1", headers=headers), 401, code)
    assert await count_comments(session) == 0


@pytest.mark.parametrize(
    "body",
    [{}, {"body": ""}, {"body": "   "}, {"body": None}, {"body": 1}, {"body": "x", "extra": 1}],
)
async def test_an_invalid_comment_is_refused_with_422_and_stores_nothing(
    client: httpx.AsyncClient, session: AsyncSession, body: dict[str, Any]
) -> None:
    post = await make_post(session, await make_user(session))
    headers = await auth_headers(client, await make_user(session))

    response = await client.post(comments_url(post.id), json=body, headers=headers)

    assert_problem(response, 422, "validation_failed")
    assert await count_comments(session) == 0


async def test_commenting_on_a_missing_post_is_404(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    headers = await auth_headers(client, await make_user(session))

    response = await client.post(comments_url(999_999), json={"body": "x"}, headers=headers)

    assert_problem(response, 404, "post_not_found")


async def test_the_author_or_an_administrator_deletes_a_comment_nobody_else(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    post = await make_post(session, await make_user(session))
    ann = await make_user(session, username="ann")
    bob = await make_user(session, username="bob")
    admin = await make_user(session, username="root", is_superuser=True)
    ann_headers = await auth_headers(client, ann)
    first, second = await add(client, post, ann_headers), await add(client, post, ann_headers)

    by_bob = await client.delete(
        f"{comments_url(post.id)}/{first['id']}", headers=await auth_headers(client, bob)
    )
    by_ann = await client.delete(f"{comments_url(post.id)}/{first['id']}", headers=ann_headers)
    by_admin = await client.delete(
        f"{comments_url(post.id)}/{second['id']}", headers=await auth_headers(client, admin)
    )

    assert_problem(by_bob, 403, "not_comment_author")
    assert by_ann.status_code == by_admin.status_code == 204
    assert await count_comments(session) == 0


async def test_deleting_a_comment_checks_the_post_then_the_comment_on_that_post(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    author = await make_user(session)
    post, other = await make_post(session, author), await make_post(session, author)
    headers = await auth_headers(client, await make_user(session))
    comment = await add(client, post, headers)

    missing_post = await client.delete(f"{comments_url(999_999)}/{comment['id']}", headers=headers)
    on_other = await client.delete(f"{comments_url(other.id)}/{comment['id']}", headers=headers)
    missing = await client.delete(f"{comments_url(post.id)}/999999", headers=headers)

    assert_problem(missing_post, 404, "post_not_found")
    assert_problem(on_other, 404, "comment_not_found")
    assert_problem(missing, 404, "comment_not_found")
    assert await count_comments(session) == 1


async def test_comments_go_with_their_post_and_with_their_author(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    author = await make_user(session)
    post, kept = await make_post(session, author), await make_post(session, author)
    ann = await make_user(session, username="ann")
    headers = await auth_headers(client, ann)
    await add(client, post, headers)
    await add(client, kept, headers)
    bob_headers = await auth_headers(client, await make_user(session, username="bob"))
    await add(client, kept, bob_headers)

    await client.delete(f"/api/v1/posts/{post.id}", headers=await auth_headers(client, author))
    assert await count_comments(session) == 2
    await client.delete("/api/v1/users/me", headers=headers)
    assert await count_comments(session) == 1


async def test_the_service_reads_writes_and_deletes_comments_by_slug(app: FastAPI) -> None:
    database = app.state.database
    async with open_session(database) as session:
        ann = await make_user(session, username="ann")
        bob = await make_user(session, username="bob")
        post = await make_post(session, ann, title="Garlic")
    async with database.transaction() as session:
        added = await comments_service.add(session, bob, "Hi.", slug=post.slug)
    async with database.transaction(read_only=True) as session:
        listed = await comments_service.list_for_post(session, viewer=ann, slug=post.slug)
    assert [(c.id, c.body, c.author.username) for c in listed] == [(added.id, "Hi.", "bob")]
    async with database.transaction() as session:
        with pytest.raises(PostNotFound):
            await comments_service.add(session, bob, "Hi.", slug="no-such-post")
        with pytest.raises(CommentNotFound):
            await comments_service.delete(session, bob, added.id + 1, slug=post.slug)
        with pytest.raises(NotCommentAuthor):
            await comments_service.delete(session, ann, added.id, slug=post.slug)
        await comments_service.delete(session, bob, added.id, slug=post.slug)
    async with database.transaction(read_only=True) as session:
        assert await comments_service.list_for_post(session, viewer=None, post_id=post.id) == []
    assert isinstance(ann, User)
