"""A post's ETag and optimistic concurrency: `If-Match` on PATCH /api/v1/posts/{post_id}."""

from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.config import CacheBackend, Settings
from app.main import create_app
from app.models import Post
from tests.conftest import Serve
from tests.factories import auth_headers, make_user
from tests.helpers import assert_problem

POSTS = "/api/v1/posts/"


async def new_post(client: httpx.AsyncClient, headers: dict[str, str]) -> dict[str, str | int]:
    created = await client.post(
        POSTS,
        json={"title": "Garlic", "content": "In October.", "tags": ["garden"]},
        headers=headers,
    )
    assert created.status_code == 201, created.text
    body: dict[str, str | int] = created.json()
    return body


async def stored_title(session: AsyncSession, post_id: object) -> str | None:
    session.expire_all()
    return await session.scalar(select(Post.title).where(Post.id == post_id))


async def test_every_read_of_a_post_names_the_same_etag_for_every_caller(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    ann = await auth_headers(client, await make_user(session))
    bob = await auth_headers(client, await make_user(session))
    post = await new_post(client, ann)
    url = f"{POSTS}{post['id']}"
    assert (await client.put(f"{url}/favorite", headers=bob)).status_code == 200

    anonymous = await client.get(url)
    favoriting = await client.get(url, headers=bob)
    by_slug = await client.get(f"{POSTS}by-slug/{post['slug']}")

    assert favoriting.json()["favorited"] is True
    assert anonymous.json()["favorited"] is False
    etags = {anonymous.headers["ETag"], favoriting.headers["ETag"], by_slug.headers["ETag"]}
    assert len(etags) == 1
    [etag] = etags
    assert etag.startswith('"')
    assert etag.endswith('"')


async def test_the_etag_changes_with_every_edit_and_favorite(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    ann = await auth_headers(client, await make_user(session))
    bob = await auth_headers(client, await make_user(session))
    post = await new_post(client, ann)
    url = f"{POSTS}{post['id']}"
    first = (await client.get(url)).headers["ETag"]

    edited = await client.patch(url, json={"content": "In November."}, headers=ann)
    after_edit = (await client.get(url)).headers["ETag"]
    await client.put(f"{url}/favorite", headers=bob)
    after_favorite = (await client.get(url)).headers["ETag"]

    assert edited.headers["ETag"] == after_edit
    assert len({first, after_edit, after_favorite}) == 3


async def test_an_edit_of_the_version_read_is_made(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    ann = await auth_headers(client, await make_user(session))
    post = await new_post(client, ann)
    url = f"{POSTS}{post['id']}"
    etag = (await client.get(url)).headers["ETag"]

    response = await client.patch(url, json={"title": "Onions"}, headers={**ann, "If-Match": etag})

    assert response.status_code == 200, response.text
    assert response.json()["title"] == "Onions"
    assert response.headers["ETag"] != etag
    assert await stored_title(session, post["id"]) == "Onions"


@pytest.mark.parametrize(
    "if_match",
    [
        pytest.param('"0123456789abcdef0123456789abcdef"', id="another-version"),
        pytest.param("{etag}", id="the-version-before-an-edit"),
        pytest.param("W/{etag}", id="weak"),
        pytest.param("{etag_unquoted}", id="unquoted"),
        pytest.param("", id="empty"),
    ],
)
async def test_an_edit_of_a_version_that_is_not_current_is_a_412_and_changes_nothing(
    client: httpx.AsyncClient, session: AsyncSession, if_match: str
) -> None:
    ann = await auth_headers(client, await make_user(session))
    post = await new_post(client, ann)
    url = f"{POSTS}{post['id']}"
    etag = (await client.get(url)).headers["ETag"]
    if if_match == "{etag}":
        # Someone else's edit came first.
        assert (await client.patch(url, json={"content": "Later."}, headers=ann)).status_code == 200
    sent = if_match.format(etag=etag, etag_unquoted=etag.strip('"'))

    response = await client.patch(url, json={"title": "Onions"}, headers={**ann, "If-Match": sent})

    assert_problem(response, 412, "post_changed_meanwhile")
    assert await stored_title(session, post["id"]) == "Garlic"


@pytest.mark.parametrize(
    "if_match", [pytest.param("*", id="any"), pytest.param('"stale", {etag}', id="a-list")]
)
async def test_if_match_may_name_any_version_or_several(
    client: httpx.AsyncClient, session: AsyncSession, if_match: str
) -> None:
    ann = await auth_headers(client, await make_user(session))
    post = await new_post(client, ann)
    url = f"{POSTS}{post['id']}"
    etag = (await client.get(url)).headers["ETag"]

    response = await client.patch(
        url, json={"title": "Onions"}, headers={**ann, "If-Match": if_match.format(etag=etag)}
    )

    assert response.status_code == 200, response.text
    assert await stored_title(session, post["id"]) == "Onions"


async def test_without_if_match_an_edit_is_unconditional(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    ann = await auth_headers(client, await make_user(session))
    post = await new_post(client, ann)

    response = await client.patch(f"{POSTS}{post['id']}", json={"title": "Onions"}, headers=ann)

    assert response.status_code == 200
    assert await stored_title(session, post["id"]) == "Onions"


async def test_if_match_comes_after_the_author_check(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    ann = await auth_headers(client, await make_user(session))
    bob = await auth_headers(client, await make_user(session))
    post = await new_post(client, ann)

    response = await client.patch(
        f"{POSTS}{post['id']}", json={"title": "Mine"}, headers={**bob, "If-Match": '"stale"'}
    )

    assert_problem(response, 403, "not_post_author")
    assert await stored_title(session, post["id"]) == "Garlic"


async def test_the_etag_of_a_read_answers_if_none_match_for_any_caller(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    ann = await auth_headers(client, await make_user(session))
    post = await new_post(client, ann)
    url = f"{POSTS}{post['id']}"
    etag = (await client.get(url)).headers["ETag"]

    anonymous = await client.get(url, headers={"If-None-Match": etag})
    signed_in = await client.get(url, headers={**ann, "If-None-Match": etag})

    assert (anonymous.status_code, signed_in.status_code) == (304, 304)
    assert anonymous.headers["ETag"] == signed_in.headers["ETag"] == etag


@pytest.fixture
async def cached_client(settings: Settings, serve: Serve) -> AsyncIterator[httpx.AsyncClient]:
    app: FastAPI = create_app(settings.model_copy(update={"CACHE_BACKEND": CacheBackend.MEMORY}))
    async with serve(app) as client:
        yield client


async def test_a_cached_read_keeps_the_posts_etag(
    cached_client: httpx.AsyncClient, session: AsyncSession
) -> None:
    ann = await auth_headers(cached_client, await make_user(session))
    post = await new_post(cached_client, ann)
    url = f"{POSTS}{post['id']}"

    miss = await cached_client.get(url)
    hit = await cached_client.get(url)
    signed_in = await cached_client.get(url, headers=ann)
    edited = await cached_client.patch(
        url, json={"title": "Onions"}, headers={**ann, "If-Match": hit.headers["ETag"]}
    )
    after = await cached_client.get(url)

    assert miss.headers["ETag"] == hit.headers["ETag"] == signed_in.headers["ETag"]
    assert edited.status_code == 200
    assert after.headers["ETag"] == edited.headers["ETag"] != hit.headers["ETag"]
    assert after.json()["title"] == "Onions"
