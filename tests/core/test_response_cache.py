"""The response cache of the hot public reads: hits that touch no database, ETags and 304s,
invalidation that follows every committed write (and no rolled-back one), the cache-aside race,
and a Redis that dies or freezes under it."""

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from app.core.cache import CachedResponse
from app.core.config import CacheBackend, Settings
from app.core.events import publish
from app.main import create_app
from app.models import Post, User
from app.posts.events import PostChanged
from tests.conftest import Serve
from tests.factories import DEFAULT_PASSWORD, auth_headers, make_post, make_user
from tests.helpers import (
    capture_logs,
    open_session,
    recorded_statements,
    request_labels,
    scrape,
    value,
)
from tests.redis_server import RedisServer

# Per request: its id and timing, and what the rate limit has left.
VOLATILE_HEADERS = {"x-request-id", "x-process-time", "ratelimit-remaining", "ratelimit-reset"}


@dataclass
class Cached:
    app: FastAPI
    client: httpx.AsyncClient
    author: User
    post: Post


def with_cache(settings: Settings, backend: str, redis_url: str) -> Settings:
    if backend == "memory":
        return settings.model_copy(update={"CACHE_BACKEND": CacheBackend.MEMORY, "REDIS_URL": ""})
    return settings.model_copy(update={"CACHE_BACKEND": CacheBackend.REDIS, "REDIS_URL": redis_url})


@pytest.fixture(params=["memory", "redis"])
def cache_settings(settings: Settings, request: pytest.FixtureRequest) -> Settings:
    redis_url = settings.REDIS_URL
    if request.param == "redis" and not redis_url:
        redis_url = request.getfixturevalue("redis_server").url
    return with_cache(settings, request.param, redis_url)


async def _start(serve: Serve, settings: Settings) -> AsyncIterator[Cached]:
    app = create_app(settings)
    async with serve(app) as client:
        async with open_session(app.state.database) as session:
            author = await make_user(session, username="writer", bio="Writes.")
            post = await make_post(session, author, title="First", content="Version one.")
        yield Cached(app, client, author, post)


@pytest.fixture
async def cached(serve: Serve, cache_settings: Settings) -> AsyncIterator[Cached]:
    async for started in _start(serve, cache_settings):
        yield started


def post_url(post: Post) -> str:
    return f"/api/v1/posts/{post.id}"


def comparable(response: httpx.Response) -> dict[str, str]:
    return {name: value for name, value in response.headers.items() if name not in VOLATILE_HEADERS}


async def test_a_second_anonymous_read_is_answered_without_the_database(cached: Cached) -> None:
    with recorded_statements(cached.app) as first:
        miss = await cached.client.get(post_url(cached.post))
    with recorded_statements(cached.app) as second:
        hit = await cached.client.get(post_url(cached.post))
    assert miss.status_code == hit.status_code == 200
    assert first
    assert second == []
    assert hit.content == miss.content
    assert comparable(hit) == comparable(miss)
    assert hit.headers["x-request-id"] != miss.headers["x-request-id"]


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/users/{author_id}",
        "/api/v1/posts/",
        "/api/v1/posts/?limit=5&offset=0",
        "/api/v1/posts/by-slug/{slug}",
        "/api/v1/tags",
    ],
)
async def test_each_cached_read_is_a_hit_the_second_time(cached: Cached, path: str) -> None:
    url = path.format(author_id=cached.author.id, slug=cached.post.slug)
    miss = await cached.client.get(url)
    with recorded_statements(cached.app) as second:
        hit = await cached.client.get(url)
    assert miss.status_code == 200
    assert second == []
    assert (hit.content, comparable(hit)) == (miss.content, comparable(miss))


@pytest.mark.parametrize("query", ["?offset=1", "?author_id=1", "?limit=5&limit=6"])
async def test_other_pages_and_filters_go_to_the_database(cached: Cached, query: str) -> None:
    await cached.client.get(f"/api/v1/posts/{query}")
    with recorded_statements(cached.app) as second:
        await cached.client.get(f"/api/v1/posts/{query}")
    assert second


async def test_a_caller_with_credentials_is_never_answered_from_the_cache(cached: Cached) -> None:
    await cached.client.get(post_url(cached.post))
    headers = await auth_headers(cached.client, cached.author)
    with recorded_statements(cached.app) as authenticated:
        response = await cached.client.get(post_url(cached.post), headers=headers)
    assert response.status_code == 200
    assert authenticated
    bad = await cached.client.get(post_url(cached.post), headers={"Authorization": "Bearer x"})
    assert bad.status_code == 401


async def test_an_authenticated_read_does_not_fill_the_cache(cached: Cached) -> None:
    headers = await auth_headers(cached.client, cached.author)
    await cached.client.get(post_url(cached.post), headers=headers)
    with recorded_statements(cached.app) as anonymous:
        await cached.client.get(post_url(cached.post))
    assert anonymous


async def test_errors_are_not_cached(cached: Cached) -> None:
    for _ in range(2):
        with recorded_statements(cached.app) as seen:
            response = await cached.client.get("/api/v1/posts/999999")
        assert response.status_code == 404
        assert seen


async def test_etags_are_strong_the_same_for_every_caller_and_answer_304(cached: Cached) -> None:
    anonymous = await cached.client.get(post_url(cached.post))
    etag = anonymous.headers["etag"]
    assert etag.startswith('"')
    headers = await auth_headers(cached.client, cached.author)
    authenticated = await cached.client.get(post_url(cached.post), headers=headers)
    assert authenticated.headers["etag"] == etag

    for extra in ({}, headers):
        not_modified = await cached.client.get(
            post_url(cached.post), headers={"If-None-Match": etag, **extra}
        )
        assert not_modified.status_code == 304
        assert not_modified.content == b""
        assert not_modified.headers["etag"] == etag
        assert "content-type" not in not_modified.headers
    weak = await cached.client.get(post_url(cached.post), headers={"If-None-Match": f"W/{etag}"})
    assert weak.status_code == 304
    other = await cached.client.get(post_url(cached.post), headers={"If-None-Match": '"other"'})
    assert other.status_code == 200


async def test_an_edit_gives_a_new_etag_and_the_new_content(cached: Cached) -> None:
    before = await cached.client.get(post_url(cached.post))
    headers = await auth_headers(cached.client, cached.author)
    edited = await cached.client.patch(
        post_url(cached.post), json={"content": "Version two."}, headers=headers
    )
    assert edited.status_code == 200
    after = await cached.client.get(
        post_url(cached.post), headers={"If-None-Match": before.headers["etag"]}
    )
    assert after.status_code == 200
    assert after.json()["content"] == "Version two."
    assert after.headers["etag"] != before.headers["etag"]


async def test_lists_show_new_edited_and_deleted_posts(cached: Cached) -> None:
    headers = await auth_headers(cached.client, cached.author)
    assert (await cached.client.get("/api/v1/posts/")).json()["total"] == 1
    created = await cached.client.post(
        "/api/v1/posts/", json={"title": "Second", "content": "More."}, headers=headers
    )
    listed = (await cached.client.get("/api/v1/posts/")).json()
    assert [item["title"] for item in listed["items"]] == ["Second", "First"]

    await cached.client.patch(
        f"/api/v1/posts/{created.json()['id']}", json={"title": "Renamed"}, headers=headers
    )
    listed = (await cached.client.get("/api/v1/posts/")).json()
    assert listed["items"][0]["title"] == "Renamed"

    await cached.client.delete(post_url(cached.post), headers=headers)
    listed = (await cached.client.get("/api/v1/posts/")).json()
    assert [item["title"] for item in listed["items"]] == ["Renamed"]
    assert (await cached.client.get(post_url(cached.post))).status_code == 404


async def test_renaming_the_author_refreshes_their_posts(cached: Cached) -> None:
    await cached.client.get(post_url(cached.post))
    await cached.client.get(f"/api/v1/users/{cached.author.id}")
    headers = await auth_headers(cached.client, cached.author)
    renamed = await cached.client.patch(
        "/api/v1/users/me", json={"username": "renamed"}, headers=headers
    )
    assert renamed.status_code == 200
    post = (await cached.client.get(post_url(cached.post))).json()
    assert post["author"]["username"] == "renamed"
    profile = (await cached.client.get(f"/api/v1/users/{cached.author.id}")).json()
    assert profile["username"] == "renamed"


def reads_of(post: Post, slug: str | None = None) -> list[str]:
    """Every cached anonymous read that shows the post."""
    return [post_url(post), f"/api/v1/posts/by-slug/{slug or post.slug}", "/api/v1/posts/"]


def shown(body: dict[str, Any]) -> dict[str, Any]:
    """The post in a read's body: the read itself, or the first item of a list."""
    item: dict[str, Any] = body["items"][0] if "items" in body else body
    return item


async def fill(cached: Cached, urls: list[str]) -> None:
    for url in urls:
        assert (await cached.client.get(url)).status_code == 200, url


async def test_a_favorite_is_counted_in_the_next_anonymous_reads(cached: Cached) -> None:
    await fill(cached, reads_of(cached.post))
    reader = await admin_headers(cached)

    response = await cached.client.put(f"{post_url(cached.post)}/favorite", headers=reader)
    assert response.status_code == 200
    for url in reads_of(cached.post):
        post = shown((await cached.client.get(url)).json())
        assert (post["favorites_count"], post["favorited"]) == (1, False), url

    await cached.client.delete(f"{post_url(cached.post)}/favorite", headers=reader)
    for url in reads_of(cached.post):
        assert shown((await cached.client.get(url)).json())["favorites_count"] == 0, url


async def test_a_tag_edit_is_in_the_next_anonymous_reads_and_the_tags_in_use(
    cached: Cached,
) -> None:
    await fill(cached, [*reads_of(cached.post), "/api/v1/tags"])
    headers = await auth_headers(cached.client, cached.author)

    response = await cached.client.patch(
        post_url(cached.post), json={"tags": ["garden", "autumn"]}, headers=headers
    )
    assert response.status_code == 200
    for url in reads_of(cached.post):
        assert shown((await cached.client.get(url)).json())["tags"] == ["garden", "autumn"], url
    assert (await cached.client.get("/api/v1/tags")).json() == {"tags": ["autumn", "garden"]}

    await cached.client.patch(post_url(cached.post), json={"tags": []}, headers=headers)
    assert (await cached.client.get("/api/v1/tags")).json() == {"tags": []}


async def test_a_new_title_retires_the_cached_read_of_the_old_slug(cached: Cached) -> None:
    old_slug = cached.post.slug
    await fill(cached, reads_of(cached.post))
    headers = await auth_headers(cached.client, cached.author)

    renamed = await cached.client.patch(
        post_url(cached.post), json={"title": "Another title"}, headers=headers
    )

    assert renamed.json()["slug"] == "another-title"
    old = await cached.client.get(f"/api/v1/posts/by-slug/{old_slug}")
    assert old.status_code == 404
    new = await cached.client.get("/api/v1/posts/by-slug/another-title")
    assert new.json()["title"] == "Another title"


async def test_deleting_the_author_retires_the_cached_reads_by_slug_and_the_tags(
    cached: Cached,
) -> None:
    headers = await auth_headers(cached.client, cached.author)
    await cached.client.patch(post_url(cached.post), json={"tags": ["mine"]}, headers=headers)
    await fill(cached, [*reads_of(cached.post), "/api/v1/tags"])

    response = await cached.client.delete("/api/v1/users/me", headers=headers)

    assert response.status_code == 204
    gone = await cached.client.get(f"/api/v1/posts/by-slug/{cached.post.slug}")
    assert gone.status_code == 404
    assert (await cached.client.get("/api/v1/tags")).json() == {"tags": []}


async def admin_headers(cached: Cached) -> dict[str, str]:
    async with open_session(cached.app.state.database) as session:
        admin = await make_user(session, username="admin", is_superuser=True)
    return await auth_headers(cached.client, admin)


async def test_deactivating_the_author_hides_their_cached_posts(cached: Cached) -> None:
    assert (await cached.client.get(post_url(cached.post))).status_code == 200
    assert (await cached.client.get(f"/api/v1/users/{cached.author.id}")).status_code == 200
    headers = await admin_headers(cached)
    response = await cached.client.patch(
        f"/api/v1/users/{cached.author.id}", json={"is_active": False}, headers=headers
    )
    assert response.status_code == 200
    assert (await cached.client.get(post_url(cached.post))).status_code == 404
    assert (await cached.client.get(f"/api/v1/users/{cached.author.id}")).status_code == 404
    assert (await cached.client.get("/api/v1/posts/")).json()["total"] == 0


async def test_deleting_the_author_removes_their_cached_posts(cached: Cached) -> None:
    assert (await cached.client.get(post_url(cached.post))).status_code == 200
    assert (await cached.client.get("/api/v1/posts/")).json()["total"] == 1
    headers = await admin_headers(cached)
    response = await cached.client.delete(f"/api/v1/users/{cached.author.id}", headers=headers)
    assert response.status_code == 204
    assert (await cached.client.get(post_url(cached.post))).status_code == 404
    assert (await cached.client.get("/api/v1/posts/")).json()["total"] == 0


async def test_a_write_that_rolls_back_invalidates_nothing(cached: Cached) -> None:
    await cached.client.get(post_url(cached.post))

    async def publish_then_fail() -> None:
        async with cached.app.state.database.transaction() as session:
            publish(session, PostChanged(post_id=cached.post.id, slugs=(cached.post.slug,)))
            raise RuntimeError("the unit of work fails")

    with pytest.raises(RuntimeError):
        await publish_then_fail()
    with recorded_statements(cached.app) as after_rollback:
        await cached.client.get(post_url(cached.post))
    assert after_rollback == []

    async with cached.app.state.database.transaction() as session:
        publish(session, PostChanged(post_id=cached.post.id, slugs=(cached.post.slug,)))
    with recorded_statements(cached.app) as after_commit:
        await cached.client.get(post_url(cached.post))
    assert after_commit


async def test_a_reader_that_loaded_the_old_row_cannot_store_it_over_an_edit(
    cached: Cached, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The cache-aside race, step by step: read old row, edit commits and invalidates, the slow
    reader stores what it read. The next read must still be the edit."""
    store = cached.app.state.cache_store
    real_store = store.store
    loaded = asyncio.Event()
    edited = asyncio.Event()

    async def store_after_the_edit(key: str, generations: str, response: CachedResponse) -> None:
        loaded.set()
        await edited.wait()
        await real_store(key, generations, response)

    monkeypatch.setattr(store, "store", store_after_the_edit)
    slow_reader = asyncio.create_task(cached.client.get(post_url(cached.post)))
    await loaded.wait()
    monkeypatch.setattr(store, "store", real_store)

    headers = await auth_headers(cached.client, cached.author)
    response = await cached.client.patch(
        post_url(cached.post), json={"content": "Version two."}, headers=headers
    )
    assert response.status_code == 200
    edited.set()
    assert (await slow_reader).json()["content"] == "Version one."

    assert (await cached.client.get(post_url(cached.post))).json()["content"] == "Version two."


async def test_the_cache_is_off_without_redis_or_memory_but_etags_work(
    client: httpx.AsyncClient, app: FastAPI, settings: Settings
) -> None:
    if settings.REDIS_URL:
        pytest.skip("with REDIS_URL the cache is on by default")
    async with open_session(app.state.database) as session:
        author = await make_user(session)
        post = await make_post(session, author)
    first = await client.get(post_url(post))
    with recorded_statements(app) as second:
        again = await client.get(post_url(post), headers={"If-None-Match": first.headers["etag"]})
    assert second
    assert again.status_code == 304


async def test_two_workers_on_one_redis_read_each_others_edits(
    serve: Serve, settings: Settings, request: pytest.FixtureRequest
) -> None:
    redis_url = settings.REDIS_URL or request.getfixturevalue("redis_server").url
    shared = with_cache(settings, "redis", redis_url)
    reader = create_app(shared)
    async for writer in _start(serve, shared):
        async with serve(reader) as reader_client:
            assert (await reader_client.get(post_url(writer.post))).status_code == 200
            with recorded_statements(reader) as hit:
                await reader_client.get(post_url(writer.post))
            assert hit == []

            headers = await auth_headers(writer.client, writer.author)
            await writer.client.patch(
                post_url(writer.post), json={"content": "Version two."}, headers=headers
            )
            fresh = await reader_client.get(post_url(writer.post))
            assert fresh.json()["content"] == "Version two."


@pytest.fixture
def private_redis(settings: Settings, redis_server: RedisServer) -> Settings:
    return with_cache(settings, "redis", redis_server.url).model_copy(
        update={"REDIS_RETRY_SECONDS": 0.05, "REDIS_SOCKET_TIMEOUT_SECONDS": 0.2}
    )


async def until_redis_is_tried_again() -> None:
    await asyncio.sleep(0.1)


@pytest.mark.parametrize("failure", ["stopped", "frozen"])
async def test_reads_fall_back_to_the_database_while_redis_is_gone_and_recover(
    serve: Serve, private_redis: Settings, redis_server: RedisServer, failure: str
) -> None:
    async for cached in _start(serve, private_redis):
        await cached.client.get(post_url(cached.post))
        if failure == "stopped":
            redis_server.stop()
        else:
            redis_server.pause()
        with capture_logs() as logs:
            for _ in range(5):
                with recorded_statements(cached.app) as seen:
                    response = await cached.client.get(post_url(cached.post))
                assert response.status_code == 200
                assert response.json()["content"] == "Version one."
                assert seen
        assert [line["event"] for line in logs].count("redis.unavailable") == 1

        if failure == "stopped":
            redis_server.start()
        else:
            redis_server.resume()
        await until_redis_is_tried_again()
        with capture_logs() as logs:
            await cached.client.get(post_url(cached.post))
            with recorded_statements(cached.app) as seen:
                await cached.client.get(post_url(cached.post))
        assert seen == []
        assert "redis.recovered" in [line["event"] for line in logs]


async def test_an_edit_made_while_redis_is_frozen_is_not_lost_when_it_thaws(
    serve: Serve, private_redis: Settings, redis_server: RedisServer
) -> None:
    """The entry survives in a Redis that froze and thawed; the invalidation that could not
    reach it then is delivered before this process reads from the cache again."""
    async for cached in _start(serve, private_redis):
        await cached.client.get(post_url(cached.post))
        headers = await auth_headers(cached.client, cached.author, DEFAULT_PASSWORD)
        redis_server.pause()
        edited = await cached.client.patch(
            post_url(cached.post), json={"content": "Version two."}, headers=headers
        )
        assert edited.status_code == 200
        redis_server.resume()
        await until_redis_is_tried_again()
        for _ in range(2):
            response = await cached.client.get(post_url(cached.post))
            assert response.json()["content"] == "Version two."


async def test_a_large_answer_is_compressed_hit_or_miss(cached: Cached) -> None:
    headers = await auth_headers(cached.client, cached.author)
    long = await cached.client.post(
        "/api/v1/posts/", json={"title": "Long", "content": "words " * 2000}, headers=headers
    )
    url = f"/api/v1/posts/{long.json()['id']}"
    miss = await cached.client.get(url, headers={"Accept-Encoding": "gzip"})
    with recorded_statements(cached.app) as seen:
        hit = await cached.client.get(url, headers={"Accept-Encoding": "gzip"})
    plain = await cached.client.get(url, headers={"Accept-Encoding": "identity"})
    assert seen == []
    assert miss.headers["content-encoding"] == hit.headers["content-encoding"] == "gzip"
    assert "content-encoding" not in plain.headers
    assert miss.json() == hit.json() == plain.json()
    assert miss.headers["etag"] == hit.headers["etag"] == plain.headers["etag"]


async def test_a_hit_still_passes_every_outer_layer(cached: Cached) -> None:
    """Request id, security headers, rate limit and metrics see a hit as they see a miss."""
    url = post_url(cached.post)
    await cached.client.get(url)
    before = await scrape(cached.client)
    with recorded_statements(cached.app) as seen:
        hit = await cached.client.get(url, headers={"X-Request-ID": "a-cache-hit"})
    after = await scrape(cached.client)

    assert seen == []
    assert hit.headers["x-request-id"] == "a-cache-hit"
    assert hit.headers["x-content-type-options"] == "nosniff"
    assert hit.headers["ratelimit-limit"]
    labels = request_labels("GET", "/api/v1/posts/{post_id}", 200)
    assert value(after, "http_requests_total", **labels) == (
        value(before, "http_requests_total", **labels) + 1
    )


async def test_a_hit_is_refused_over_the_rate_limit(serve: Serve, cache_settings: Settings) -> None:
    limited = cache_settings.model_copy(update={"RATE_LIMIT_DEFAULT": "2/minute"})
    async for cached in _start(serve, limited):
        for _ in range(2):
            assert (await cached.client.get(post_url(cached.post))).status_code == 200
        refused = await cached.client.get(post_url(cached.post))
        assert refused.status_code == 429
