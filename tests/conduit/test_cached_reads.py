"""Conduit's hot anonymous reads come from the response cache, and every write through either API
makes the ones it changed stale before its answer is sent."""

from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI

from app.core.config import CacheBackend, Settings
from app.main import create_app
from tests.conduit.helpers import sign_up, token
from tests.conduit.test_articles import create
from tests.conftest import Serve
from tests.helpers import recorded_statements


@pytest.fixture
def cached_app(settings: Settings) -> FastAPI:
    """Redis on the PostgreSQL pass (as production runs), a memory cache on SQLite."""
    backend = CacheBackend.REDIS if settings.REDIS_URL else CacheBackend.MEMORY
    return create_app(settings.model_copy(update={"CACHE_BACKEND": backend}))


@pytest.fixture
async def client(cached_app: FastAPI, serve: Serve) -> AsyncIterator[httpx.AsyncClient]:
    async with serve(cached_app) as started:
        yield started


async def assert_hit_the_second_time(app: FastAPI, client: httpx.AsyncClient, url: str) -> str:
    miss = await client.get(url)
    with recorded_statements(app) as second:
        hit = await client.get(url)
    assert miss.status_code == 200, miss.text
    assert second == [], url
    assert hit.content == miss.content
    assert hit.headers["ETag"] == miss.headers["ETag"]
    return hit.text


async def test_each_conduit_read_is_a_hit_the_second_time(
    cached_app: FastAPI, client: httpx.AsyncClient
) -> None:
    jake = await sign_up(client, "jake")
    article = await create(client, jake["token"], tagList=["dragons"])

    for url in (
        f"/api/articles/{article['slug']}",
        "/api/profiles/jake",
        "/api/profiles/JAKE",
        "/api/articles",
        "/api/articles?tag=dragons&limit=5",
        "/api/articles?author=jake&offset=0",
        "/api/tags",
    ):
        await assert_hit_the_second_time(cached_app, client, url)


async def test_deeper_pages_and_callers_with_a_token_go_to_the_database(
    cached_app: FastAPI, client: httpx.AsyncClient
) -> None:
    jake = await sign_up(client, "jake")
    article = await create(client, jake["token"])

    for url, headers in (
        ("/api/articles?offset=1", {}),
        (f"/api/articles/{article['slug']}", token(jake["token"])),
    ):
        await client.get(url, headers=headers)
        with recorded_statements(cached_app) as again:
            await client.get(url, headers=headers)
        assert again, url


async def test_a_favorite_a_new_article_and_a_rename_are_seen_at_once(
    client: httpx.AsyncClient,
) -> None:
    jake = await sign_up(client, "jake")
    ann = await sign_up(client, "ann")
    article = await create(client, jake["token"], tagList=["dragons"])
    url = f"/api/articles/{article['slug']}"
    for read in (url, "/api/articles", "/api/tags", "/api/articles?favorited=ann"):
        await client.get(read)

    await client.post(f"{url}/favorite", headers=token(ann["token"]))
    favorited = (await client.get(url)).json()["article"]
    favorites = (await client.get("/api/articles?favorited=ann")).json()
    await create(client, ann["token"], "Second", tagList=["angular"])
    listed = (await client.get("/api/articles")).json()
    tags = (await client.get("/api/tags")).json()
    renamed = await client.put(
        url, json={"article": {"title": "A new title"}}, headers=token(jake["token"])
    )
    old_slug = await client.get(url)

    assert favorited["favoritesCount"] == 1
    assert favorites["articlesCount"] == 1
    assert [a["title"] for a in listed["articles"]] == ["Second", article["title"]]
    assert tags == {"tags": ["angular", "dragons"]}
    assert renamed.status_code == 200
    assert old_slug.status_code == 404
    new = await client.get(f"/api/articles/{renamed.json()['article']['slug']}")
    assert new.json()["article"]["title"] == "A new title"


async def test_a_profile_change_is_seen_at_once_under_every_spelling_of_the_name(
    client: httpx.AsyncClient,
) -> None:
    jake = await sign_up(client, "jake")
    article = await create(client, jake["token"])
    reads = ("/api/profiles/jake", "/api/profiles/Jake", f"/api/articles/{article['slug']}")
    for read in reads:
        await client.get(read)

    await client.put("/api/user", json={"user": {"bio": "Dragons."}}, headers=token(jake["token"]))
    renamed = await client.put(
        "/api/user", json={"user": {"username": "jacob"}}, headers=token(jake["token"])
    )

    assert renamed.status_code == 200
    for read in reads[:2]:
        assert (await client.get(read)).status_code == 404, read
    author = (await client.get(reads[2])).json()["article"]["author"]
    assert (author["username"], author["bio"]) == ("jacob", "Dragons.")
    profile = (await client.get("/api/profiles/jacob")).json()["profile"]
    assert profile["bio"] == "Dragons."
