"""Safe retries: `Idempotency-Key` on the creating POSTs of /api/v1 (posts, comments)."""

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import func, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.idempotency import repository as idempotency_repository
from app.models import Comment, IdempotencyKey, Post
from tests.factories import auth_headers, make_post, make_user
from tests.helpers import assert_problem, open_session

POSTS = "/api/v1/posts/"
NEW_POST = {"title": "Planting garlic", "content": "In October.", "tags": ["garden"]}
KEY = "5b6c1f0e-8a57-4c43-9a8e-2f6f1f7c2d10"


async def count(session: AsyncSession, model: type[Post] | type[Comment]) -> int:
    session.expire_all()
    return await session.scalar(select(func.count()).select_from(model)) or 0


async def kept_keys(session: AsyncSession) -> int:
    return await session.scalar(select(func.count()).select_from(IdempotencyKey)) or 0


def with_key(headers: dict[str, str], key: str = KEY) -> dict[str, str]:
    return {**headers, "Idempotency-Key": key}


async def test_a_retry_with_the_key_gets_the_first_answer_and_creates_nothing(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    headers = with_key(await auth_headers(client, await make_user(session)))

    first = await client.post(POSTS, json=NEW_POST, headers=headers)
    retry = await client.post(POSTS, json=NEW_POST, headers=headers)

    assert first.status_code == 201, first.text
    assert retry.status_code == 201
    assert retry.content == first.content
    assert retry.headers["Location"] == first.headers["Location"]
    assert retry.headers["Content-Type"] == first.headers["Content-Type"]
    assert retry.headers["Idempotent-Replayed"] == "true"
    assert "Idempotent-Replayed" not in first.headers
    assert await count(session, Post) == 1


async def test_the_retry_gets_the_first_answer_even_after_the_post_changed(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    headers = await auth_headers(client, await make_user(session))
    first = await client.post(POSTS, json=NEW_POST, headers=with_key(headers))
    edited = await client.patch(first.headers["Location"], json={"title": "Later"}, headers=headers)

    retry = await client.post(POSTS, json=NEW_POST, headers=with_key(headers))

    assert edited.status_code == 200
    assert retry.json() == first.json()
    assert retry.json()["title"] == "Planting garlic"


async def test_the_same_request_written_otherwise_is_the_same_request(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    headers = with_key(await auth_headers(client, await make_user(session)))
    first = await client.post(POSTS, json=NEW_POST, headers=headers)
    reordered = '{ "tags": ["garden"],\n  "content": "In October.", "title": "Planting garlic" }'

    retry = await client.post(
        POSTS, content=reordered, headers={**headers, "Content-Type": "application/json"}
    )

    assert retry.status_code == 201
    assert retry.content == first.content
    assert await count(session, Post) == 1


@pytest.mark.parametrize(
    "other",
    [
        pytest.param({**NEW_POST, "title": "Planting onions"}, id="another-title"),
        pytest.param({**NEW_POST, "tags": []}, id="other-tags"),
    ],
)
async def test_the_key_with_another_body_is_a_409_and_creates_nothing(
    client: httpx.AsyncClient, session: AsyncSession, other: dict[str, Any]
) -> None:
    headers = with_key(await auth_headers(client, await make_user(session)))
    await client.post(POSTS, json=NEW_POST, headers=headers)

    response = await client.post(POSTS, json=other, headers=headers)

    assert_problem(response, 409, "idempotency_key_mismatch")
    assert await count(session, Post) == 1


async def test_the_key_on_another_route_is_another_request(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    ann = await make_user(session)
    post = await make_post(session, ann)
    headers = with_key(await auth_headers(client, ann))
    await client.post(POSTS, json=NEW_POST, headers=headers)

    response = await client.post(
        f"{POSTS}{post.id}/comments", json={"body": "Nice."}, headers=headers
    )

    assert_problem(response, 409, "idempotency_key_mismatch")
    assert await count(session, Comment) == 0


async def test_keys_belong_to_their_user(client: httpx.AsyncClient, session: AsyncSession) -> None:
    ann_headers = with_key(await auth_headers(client, await make_user(session)))
    bob_headers = with_key(await auth_headers(client, await make_user(session)))

    ann_post = await client.post(POSTS, json=NEW_POST, headers=ann_headers)
    bob_post = await client.post(POSTS, json=NEW_POST, headers=bob_headers)

    assert (ann_post.status_code, bob_post.status_code) == (201, 201)
    assert ann_post.json()["id"] != bob_post.json()["id"]
    assert await count(session, Post) == 2


async def test_a_comment_is_retried_safely_too(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    ann = await make_user(session)
    post = await make_post(session, ann)
    headers = with_key(await auth_headers(client, ann))
    url = f"{POSTS}{post.id}/comments"

    first = await client.post(url, json={"body": "Nice."}, headers=headers)
    retry = await client.post(url, json={"body": "Nice."}, headers=headers)

    assert (first.status_code, retry.status_code) == (201, 201)
    assert retry.content == first.content
    assert await count(session, Comment) == 1


async def test_a_retry_after_the_post_was_deleted_is_a_409_and_creates_nothing(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    headers = await auth_headers(client, await make_user(session))
    first = await client.post(POSTS, json=NEW_POST, headers=with_key(headers))
    deleted = await client.delete(first.headers["Location"], headers=headers)

    retry = await client.post(POSTS, json=NEW_POST, headers=with_key(headers))

    assert deleted.status_code == 204
    assert_problem(retry, 409, "idempotency_key_created_gone")
    assert await count(session, Post) == 0


@pytest.mark.parametrize("deleted", ["comment", "its-post"])
async def test_a_retry_after_the_comment_was_deleted_is_a_409_and_creates_nothing(
    client: httpx.AsyncClient, session: AsyncSession, deleted: str
) -> None:
    ann = await make_user(session)
    post = await make_post(session, ann)
    headers = await auth_headers(client, ann)
    url = f"{POSTS}{post.id}/comments"
    first = await client.post(url, json={"body": "Nice."}, headers=with_key(headers))
    gone = f"{url}/{first.json()['id']}" if deleted == "comment" else f"{POSTS}{post.id}"
    assert (await client.delete(gone, headers=headers)).status_code == 204

    retry = await client.post(url, json={"body": "Nice."}, headers=with_key(headers))

    # With its post gone too: the key is answered first, before the route looks for the post.
    assert_problem(retry, 409, "idempotency_key_created_gone")
    assert await count(session, Comment) == 0


async def test_another_post_deleted_leaves_the_answer_alone(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    ann = await make_user(session)
    other = await make_post(session, ann)
    headers = await auth_headers(client, ann)
    first = await client.post(POSTS, json=NEW_POST, headers=with_key(headers))
    assert (await client.delete(f"{POSTS}{other.id}", headers=headers)).status_code == 204

    retry = await client.post(POSTS, json=NEW_POST, headers=with_key(headers))

    assert retry.status_code == 201
    assert retry.content == first.content


async def test_a_request_that_failed_keeps_no_key(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    headers = with_key(await auth_headers(client, await make_user(session)))

    refused = await client.post(POSTS, json={"title": "", "content": "x"}, headers=headers)
    missing = await client.post(f"{POSTS}999999/comments", json={"body": "x"}, headers=headers)
    created = await client.post(POSTS, json=NEW_POST, headers=headers)

    assert refused.status_code == 422
    assert missing.status_code == 404
    assert created.status_code == 201
    assert await count(session, Post) == 1


async def test_a_key_past_its_time_is_a_new_key(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    headers = with_key(await auth_headers(client, await make_user(session)))
    await client.post(POSTS, json=NEW_POST, headers=headers)
    await session.execute(
        update(IdempotencyKey).values(expires_at=datetime.now(UTC) - timedelta(seconds=1))
    )
    await session.commit()

    again = await client.post(POSTS, json={**NEW_POST, "title": "Another"}, headers=headers)

    assert again.status_code == 201
    assert "Idempotent-Replayed" not in again.headers
    assert await count(session, Post) == 2
    assert await kept_keys(session) == 1


async def test_the_answer_is_kept_for_a_day_by_default(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    headers = with_key(await auth_headers(client, await make_user(session)))
    before = datetime.now(UTC)

    await client.post(POSTS, json=NEW_POST, headers=headers)

    kept = await session.scalar(select(IdempotencyKey))
    assert kept is not None
    assert kept.key == KEY
    assert timedelta(hours=24) <= kept.expires_at - before <= timedelta(hours=24, minutes=1)


@pytest.mark.parametrize(
    "key",
    [
        pytest.param(b"", id="empty"),
        pytest.param(b"k" * 256, id="too-long"),
        pytest.param(b"two words", id="a-space"),
        pytest.param("clé".encode(), id="not-ascii"),
    ],
)
async def test_a_malformed_key_is_a_422_and_creates_nothing(
    client: httpx.AsyncClient, session: AsyncSession, key: bytes
) -> None:
    token = await auth_headers(client, await make_user(session))
    headers = {name.encode(): value.encode() for name, value in token.items()}
    headers[b"Idempotency-Key"] = key

    response = await client.post(POSTS, json=NEW_POST, headers=headers)

    assert_problem(response, 422, "validation_failed")
    assert await count(session, Post) == 0


async def test_a_key_without_a_token_is_a_401(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    anonymous = await client.post(POSTS, json=NEW_POST, headers={"Idempotency-Key": KEY})
    forged = await client.post(
        POSTS, json=NEW_POST, headers=with_key({"Authorization": "Bearer not-a-jwt"})
    )

    assert_problem(anonymous, 401, "not_authenticated")
    assert_problem(forged, 401, "invalid_token")
    assert await count(session, Post) == 0


async def test_without_a_key_every_post_is_created(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    headers = await auth_headers(client, await make_user(session))

    await client.post(POSTS, json=NEW_POST, headers=headers)
    await client.post(POSTS, json=NEW_POST, headers=headers)

    assert await count(session, Post) == 2
    assert await kept_keys(session) == 0


@pytest.mark.usefixtures("postgresql_only")
async def test_a_retry_while_the_first_still_runs_is_a_409_in_flight(
    client: httpx.AsyncClient, session: AsyncSession, app: FastAPI
) -> None:
    ann = await make_user(session)
    headers = with_key(await auth_headers(client, ann))
    # The first request holds the key's lock until it commits: here, another transaction does.
    lock_id = idempotency_repository._lock_id(ann.id, KEY)
    async with open_session(app.state.database) as first:
        await first.execute(text("SELECT pg_advisory_xact_lock(:id)"), {"id": lock_id})

        retry = await client.post(POSTS, json=NEW_POST, headers=headers)

        await first.rollback()
    after = await client.post(POSTS, json=NEW_POST, headers=headers)

    problem = assert_problem(retry, 409, "idempotency_key_in_flight")
    assert retry.headers["Retry-After"] == "1"
    assert "Idempotency-Key" in problem["detail"]
    assert after.status_code == 201
    assert await count(session, Post) == 1


@pytest.mark.usefixtures("postgresql_only")
async def test_requests_with_one_key_at_once_create_one_post(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    headers = with_key(await auth_headers(client, await make_user(session)))

    responses = await asyncio.gather(
        *(client.post(POSTS, json=NEW_POST, headers=headers) for _ in range(5))
    )

    statuses = sorted(response.status_code for response in responses)
    created = [response for response in responses if response.status_code == 201]
    assert set(statuses) <= {201, 409}
    assert created
    assert {response.content for response in created} == {created[0].content}
    for refused in (response for response in responses if response.status_code == 409):
        assert_problem(refused, 409, "idempotency_key_in_flight")
    assert await count(session, Post) == 1


async def test_the_documented_operations_take_the_header(client: httpx.AsyncClient) -> None:
    paths = (await client.get("/openapi.json")).json()["paths"]

    for path in ("/api/v1/posts/", "/api/v1/posts/{post_id}/comments"):
        operation = paths[path]["post"]
        headers = {p["name"] for p in operation["parameters"] if p["in"] == "header"}
        assert "Idempotency-Key" in headers
        assert "409" in operation["responses"]
    assert "parameters" not in paths["/api/v1/posts/{post_id}"]["patch"] or all(
        p["name"] != "Idempotency-Key"
        for p in paths["/api/v1/posts/{post_id}"]["patch"]["parameters"]
    )
