"""Posts as a publishing domain, through HTTP: slugs, descriptions, tags, favorites, the feed,
the read model's one statement per item, and slugs under concurrent creates on PostgreSQL."""

import asyncio
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.config import CacheBackend, Settings
from app.main import create_app
from app.models import Comment, Favorite, Follow, Post, PostTag, Tag, User
from app.models.tag import TAG_MAX_LENGTH, TAGS_PER_POST_MAX
from app.posts import service as posts_service
from app.posts import slugs
from app.posts.events import PostChanged
from tests.conftest import Serve
from tests.factories import auth_headers, make_post, make_user
from tests.helpers import (
    assert_problem,
    count_rows,
    open_session,
    racing_an_uncommitted_change,
    recorded_statements,
)

POSTS = "/api/v1/posts/"
TAGS = "/api/v1/tags"
FEED = "/api/v1/feed"


def by_slug(slug: str) -> str:
    return f"{POSTS}by-slug/{slug}"


async def create(
    client: httpx.AsyncClient, headers: dict[str, str], **fields: Any
) -> dict[str, Any]:
    body = {"title": "Planting garlic", "content": "In October.", **fields}
    response = await client.post(POSTS, json=body, headers=headers)
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


async def count_of(session: AsyncSession, model: type[Any]) -> int:
    return await count_rows(session, select(func.count()).select_from(model))


# --- slugs ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("title", "slug"),
    [
        ("Planting garlic", "planting-garlic"),
        ("  How to: train  your DRAGON?! ", "how-to-train-your-dragon"),
        ("Crème brûlée à la Noël", "creme-brulee-a-la-noel"),
        ("Straße 2024", "strae-2024"),
        ("日本語", "post"),
        ("---", "post"),
    ],
)
def test_a_slug_is_the_titles_words_in_lowercase_ascii(title: str, slug: str) -> None:
    assert slugs.base_of(title) == slug


def test_a_slug_fits_its_column_with_its_suffix_however_long_the_title() -> None:
    base = slugs.base_of("word " * 200)
    assert len(slugs.with_suffix(base)) <= Post.slug.type.length
    assert not base.endswith("-")


async def test_create_gives_the_post_a_slug_a_description_and_its_tags_in_order(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    ann = await make_user(session, username="ann", bio="Gardens.")
    headers = await auth_headers(client, ann)

    post = await create(
        client, headers, description="When and how.", tags=["garden", " autumn ", "garden", "bulbs"]
    )

    assert post["slug"] == "planting-garlic"
    assert post["description"] == "When and how."
    assert post["tags"] == ["garden", "autumn", "bulbs"]
    assert (post["favorites_count"], post["favorited"]) == (0, False)
    assert post["author"] == {
        "id": ann.id,
        "username": "ann",
        "bio": "Gardens.",
        "image": None,
        "following": False,
    }
    response = await client.get(by_slug("planting-garlic"))
    assert response.status_code == 200
    assert response.json() == post


async def test_duplicate_titles_get_distinct_slugs_that_each_serve_their_post(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    headers = await auth_headers(client, await make_user(session))

    posts = [await create(client, headers) for _ in range(3)]

    assert posts[0]["slug"] == "planting-garlic"
    assert len({post["slug"] for post in posts}) == 3
    assert all(post["slug"].startswith("planting-garlic-") for post in posts[1:])
    for post in posts:
        assert (await client.get(by_slug(post["slug"]))).json()["id"] == post["id"]


async def test_editing_the_content_keeps_the_slug_and_a_new_title_makes_a_new_one(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    headers = await auth_headers(client, await make_user(session))
    post = await create(client, headers)
    url = f"{POSTS}{post['id']}"

    same_words = await client.patch(url, json={"title": "Planting Garlic!"}, headers=headers)
    content = await client.patch(url, json={"content": "In November."}, headers=headers)
    assert same_words.json()["slug"] == content.json()["slug"] == "planting-garlic"

    renamed = await client.patch(url, json={"title": "Planting tulips"}, headers=headers)

    assert renamed.status_code == 200, renamed.text
    assert renamed.json()["slug"] == "planting-tulips"
    assert (await client.get(by_slug("planting-tulips"))).json()["id"] == post["id"]
    assert_problem(await client.get(by_slug("planting-garlic")), 404, "post_not_found")


async def test_a_title_whose_slug_a_path_means_gets_another(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    # /api/articles/feed is Conduit's feed: an article there could never be read.
    headers = await auth_headers(client, await make_user(session))

    created = await create(client, headers, title="Feed")
    other = await create(client, headers, title="Garlic")
    renamed = await client.patch(f"{POSTS}{other['id']}", json={"title": "FEED"}, headers=headers)

    for slug in (created["slug"], renamed.json()["slug"]):
        assert slug.startswith("feed-")
        assert (await client.get(f"/api/articles/{slug}")).status_code == 200


async def test_a_title_taken_by_another_post_renames_to_a_distinct_slug(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    headers = await auth_headers(client, await make_user(session))
    await create(client, headers, title="Tulips")
    post = await create(client, headers, title="Garlic")

    response = await client.patch(f"{POSTS}{post['id']}", json={"title": "Tulips"}, headers=headers)

    assert response.json()["slug"].startswith("tulips-")


@pytest.mark.parametrize(
    "slug", ["Planting-Garlic", "planting--garlic", "-garlic", "a" * 256, "garlic%20"]
)
async def test_a_slug_that_cannot_be_one_is_refused_with_422(
    client: httpx.AsyncClient, slug: str
) -> None:
    assert_problem(await client.get(by_slug(slug)), 422, "validation_failed")


async def test_a_deactivated_authors_post_by_slug_is_404_except_to_administrators(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    gone = await make_user(session, username="gone", is_active=False)
    post = await make_post(session, gone, title="Hidden")
    admin = await make_user(session, username="root", is_superuser=True)

    assert_problem(await client.get(by_slug(post.slug)), 404, "post_not_found")
    response = await client.get(by_slug(post.slug), headers=await auth_headers(client, admin))
    assert response.status_code == 200
    assert response.json()["id"] == post.id


@pytest.mark.usefixtures("postgresql_only")
async def test_concurrent_creates_with_one_title_all_succeed_with_distinct_slugs(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    users = [await make_user(session) for _ in range(4)]
    headers = [await auth_headers(client, user) for user in users]

    responses = await asyncio.gather(
        *(
            client.post(POSTS, json={"title": "Same title", "content": "c"}, headers=each)
            for each in headers
            for _ in range(2)
        )
    )

    assert [response.status_code for response in responses] == [201] * 8
    assert len({response.json()["slug"] for response in responses}) == 8
    assert await count_of(session, Post) == 8


@pytest.mark.usefixtures("postgresql_only")
async def test_concurrent_creates_with_one_new_tag_share_the_tag(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    headers = await auth_headers(client, await make_user(session))

    responses = await asyncio.gather(
        *(
            client.post(
                POSTS, json={"title": f"T{n}", "content": "c", "tags": ["new"]}, headers=headers
            )
            for n in range(6)
        )
    )

    assert [response.status_code for response in responses] == [201] * 6
    assert all(response.json()["tags"] == ["new"] for response in responses)
    assert await count_of(session, Tag) == 1


# --- descriptions and tags ----------------------------------------------------------------------


async def test_tags_can_be_replaced_reordered_and_cleared_and_null_is_refused(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    headers = await auth_headers(client, await make_user(session))
    post = await create(client, headers, tags=["a", "b"])
    url = f"{POSTS}{post['id']}"

    reordered = await client.patch(url, json={"tags": ["c", "b", "a"]}, headers=headers)
    assert reordered.json()["tags"] == ["c", "b", "a"]
    assert reordered.json()["updated_at"] > post["updated_at"]
    kept = await client.patch(url, json={"content": "New."}, headers=headers)
    assert kept.json()["tags"] == ["c", "b", "a"]

    refused = await client.patch(url, json={"tags": None}, headers=headers)
    assert_problem(refused, 422, "validation_failed")
    assert (await client.get(url)).json()["tags"] == ["c", "b", "a"]

    cleared = await client.patch(url, json={"tags": []}, headers=headers)
    assert cleared.json()["tags"] == []
    assert (await client.get(url)).json()["tags"] == []
    assert await count_of(session, PostTag) == 0


@pytest.mark.parametrize(
    "fields",
    [
        pytest.param({"tags": [""]}, id="empty-tag"),
        pytest.param({"tags": ["   "]}, id="blank-tag"),
        pytest.param({"tags": ["a\x1eb"]}, id="control-character"),
        pytest.param({"tags": ["x" * (TAG_MAX_LENGTH + 1)]}, id="long-tag"),
        pytest.param({"tags": [str(n) for n in range(TAGS_PER_POST_MAX + 1)]}, id="too-many"),
        pytest.param({"tags": "garden"}, id="not-a-list"),
        pytest.param({"tags": [1]}, id="not-strings"),
        pytest.param({"description": None}, id="null-description"),
        pytest.param({"description": "x" * 1001}, id="long-description"),
        pytest.param({"description": "a\x00b"}, id="nul-description"),
    ],
)
async def test_invalid_tags_or_description_are_refused_and_change_nothing(
    client: httpx.AsyncClient, session: AsyncSession, fields: dict[str, Any]
) -> None:
    headers = await auth_headers(client, await make_user(session))
    post = await create(client, headers, tags=["kept"], description="Kept.")

    created = await client.post(
        POSTS, json={"title": "t", "content": "c", **fields}, headers=headers
    )
    updated = await client.patch(f"{POSTS}{post['id']}", json=fields, headers=headers)

    assert_problem(created, 422, "validation_failed")
    assert_problem(updated, 422, "validation_failed")
    assert await count_of(session, Post) == 1
    after = (await client.get(f"{POSTS}{post['id']}")).json()
    assert (after["tags"], after["description"]) == (["kept"], "Kept.")


async def test_tags_list_every_tag_in_use_sorted_once_and_hides_deactivated_authors(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    ann = await make_user(session, username="ann")
    headers = await auth_headers(client, ann)
    await create(client, headers, tags=["zeta", "Alpha", "beta"])
    post = await create(client, headers, tags=["beta", "émile"])
    gone = await make_user(session, username="gone")
    await create(client, await auth_headers(client, gone), tags=["secret"])
    await client.patch(f"{POSTS}{post['id']}", json={"tags": ["beta"]}, headers=headers)
    gone.is_active = False
    await session.commit()

    response = await client.get(TAGS)

    assert response.status_code == 200
    assert response.json() == {"tags": ["Alpha", "beta", "zeta"]}


async def test_list_posts_filters_by_tag_and_by_who_favorited_them(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    ann = await make_user(session, username="ann")
    bob = await make_user(session, username="Bob")
    ann_headers = await auth_headers(client, ann)
    garlic = await create(client, ann_headers, title="Garlic", tags=["bulbs", "autumn"])
    tulips = await create(client, ann_headers, title="Tulips", tags=["bulbs"])
    await create(client, ann_headers, title="Roses", tags=["shrubs"])
    bob_headers = await auth_headers(client, bob)
    for post in (garlic, tulips):
        await client.put(f"{POSTS}{post['id']}/favorite", headers=bob_headers)

    def ids(response: httpx.Response) -> list[int]:
        assert response.status_code == 200, response.text
        return [item["id"] for item in response.json()["items"]]

    assert ids(await client.get(POSTS, params={"tag": "bulbs"})) == [tulips["id"], garlic["id"]]
    assert (await client.get(POSTS, params={"tag": "bulbs"})).json()["total"] == 2
    assert ids(await client.get(POSTS, params={"tag": "unknown"})) == []
    favored = await client.get(POSTS, params={"favorited_by": "bob"})
    assert ids(favored) == [tulips["id"], garlic["id"]]
    assert ids(await client.get(POSTS, params={"favorited_by": "nobody"})) == []
    both = await client.get(POSTS, params={"favorited_by": "BOB", "tag": "autumn"})
    assert ids(both) == [garlic["id"]]


# --- favorites ------------------------------------------------------------------------------------


async def test_favorite_and_unfavorite_are_idempotent_and_counted_per_post(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    ann = await make_user(session, username="ann")
    bob = await make_user(session, username="bob")
    post = await make_post(session, ann)
    url = f"{POSTS}{post.id}/favorite"
    ann_headers, bob_headers = await auth_headers(client, ann), await auth_headers(client, bob)

    first = await client.put(url, headers=ann_headers)
    again = await client.put(url, headers=ann_headers)
    bobs = await client.put(url, headers=bob_headers)

    assert first.status_code == again.status_code == bobs.status_code == 200
    assert (first.json()["favorites_count"], first.json()["favorited"]) == (1, True)
    assert (again.json()["favorites_count"], again.json()["favorited"]) == (1, True)
    assert (bobs.json()["favorites_count"], bobs.json()["favorited"]) == (2, True)
    seen_by_anyone = (await client.get(f"{POSTS}{post.id}")).json()
    assert (seen_by_anyone["favorites_count"], seen_by_anyone["favorited"]) == (2, False)

    removed = await client.delete(url, headers=ann_headers)
    removed_again = await client.delete(url, headers=ann_headers)

    assert (removed.json()["favorites_count"], removed.json()["favorited"]) == (1, False)
    assert (removed_again.json()["favorites_count"], removed_again.json()["favorited"]) == (
        1,
        False,
    )
    assert await count_of(session, Favorite) == 1


@pytest.mark.parametrize("method", ["PUT", "DELETE"])
async def test_favorite_needs_a_valid_token_before_anything_and_a_visible_post(
    client: httpx.AsyncClient, session: AsyncSession, method: str
) -> None:
    gone = await make_user(session, username="gone", is_active=False)
    hidden = await make_post(session, gone)
    headers = await auth_headers(client, await make_user(session))

    unauthenticated = await client.request(method, f"{POSTS}999999/favorite")
    bad_token = await client.request(
        method, f"{POSTS}999999/favorite", headers={"Authorization": "Bearer nope"}
    )
    missing = await client.request(method, f"{POSTS}999999/favorite", headers=headers)
    of_hidden = await client.request(method, f"{POSTS}{hidden.id}/favorite", headers=headers)

    assert_problem(unauthenticated, 401, "not_authenticated")
    assert_problem(bad_token, 401, "invalid_token")
    assert_problem(missing, 404, "post_not_found")
    assert_problem(of_hidden, 404, "post_not_found")
    assert await count_of(session, Favorite) == 0


# --- the feed -----------------------------------------------------------------------------------


async def test_the_feed_shows_followed_authors_posts_newest_first_and_paginates(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    ann = await make_user(session, username="ann")
    bob = await make_user(session, username="bob")
    carol = await make_user(session, username="carol")
    bobs = [await make_post(session, bob) for _ in range(3)]
    await make_post(session, carol)
    headers = await auth_headers(client, ann)
    assert (await client.get(FEED, headers=headers)).json()["total"] == 0
    await client.put(f"/api/v1/users/{bob.id}/follow", headers=headers)

    page = await client.get(FEED, params={"limit": 2}, headers=headers)
    rest = await client.get(FEED, params={"limit": 2, "offset": 2}, headers=headers)

    assert page.status_code == 200, page.text
    assert [item["id"] for item in page.json()["items"]] == [bobs[2].id, bobs[1].id]
    assert [item["id"] for item in rest.json()["items"]] == [bobs[0].id]
    assert page.json()["total"] == rest.json()["total"] == 3
    assert all(item["author"]["following"] for item in page.json()["items"])
    assert_problem(await client.get(FEED), 401, "not_authenticated")
    assert_problem(
        await client.get(FEED, params={"limit": 101}, headers=headers), 422, "validation_failed"
    )


async def test_the_feed_leaves_out_deactivated_authors(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    ann = await make_user(session, username="ann")
    bob = await make_user(session, username="bob")
    await make_post(session, bob)
    session.add(Follow(follower_id=ann.id, followee_id=bob.id))
    bob.is_active = False
    await session.commit()

    response = await client.get(FEED, headers=await auth_headers(client, ann))

    assert response.json()["total"] == 0


# --- statements ----------------------------------------------------------------------------------


async def _list_statements(
    app: FastAPI, client: httpx.AsyncClient, url: str, headers: dict[str, str]
) -> int:
    with recorded_statements(app) as statements:
        response = await client.get(url, headers=headers)
    assert response.status_code == 200, response.text
    return len([s for s in statements if not s.startswith(("BEGIN", "PRAGMA"))])


async def test_a_list_is_two_statements_whatever_its_size_tags_favorites_and_follows(
    serve: Serve, settings: Settings
) -> None:
    app = create_app(settings.model_copy(update={"CACHE_BACKEND": CacheBackend.OFF}))
    async with serve(app) as client, open_session(app.state.database) as session:
        reader = await make_user(session, username="reader")
        headers = await auth_headers(client, reader)

        async def add_posts(count: int) -> None:
            for _ in range(count):
                author = await make_user(session)
                post = await make_post(session, author)
                tags = [Tag(name=f"tag-{post.id}-{n}") for n in range(3)]
                session.add_all(tags)
                await session.flush()
                session.add_all(
                    PostTag(post_id=post.id, tag_id=tag.id, position=n)
                    for n, tag in enumerate(tags)
                )
                session.add(Favorite(user_id=reader.id, post_id=post.id))
                session.add(Follow(follower_id=reader.id, followee_id=author.id))
                await session.commit()

        await add_posts(2)
        urls = [POSTS, FEED, f"{POSTS}?tag=tag-1-0", f"{POSTS}?favorited_by=reader"]
        small = [await _list_statements(app, client, url, headers) for url in urls]
        await add_posts(18)
        large = [await _list_statements(app, client, url, headers) for url in urls]
        body = (await client.get(POSTS, headers=headers)).json()

    # Signing in is checked by its own statements; the list is a page and a count.
    assert small == large
    assert all(count <= 2 + 2 for count in large)
    assert len(body["items"]) == 20
    assert all(len(item["tags"]) == 3 for item in body["items"])
    assert all(item["favorited"] and item["author"]["following"] for item in body["items"])
    assert all(item["favorites_count"] == 1 for item in body["items"])


async def test_a_list_without_a_caller_is_exactly_a_page_and_a_count(
    serve: Serve, settings: Settings
) -> None:
    app = create_app(settings.model_copy(update={"CACHE_BACKEND": CacheBackend.OFF}))
    async with serve(app) as client, open_session(app.state.database) as session:
        for _ in range(5):
            await make_post(session, await make_user(session))
        count = await _list_statements(app, client, f"{POSTS}?limit=5", {})

    assert count == 2


@pytest.mark.usefixtures("postgresql_only")
async def test_concurrent_favorites_of_one_post_by_one_user_make_one_favorite(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    post = await make_post(session, await make_user(session))
    headers = await auth_headers(client, await make_user(session))

    responses = await asyncio.gather(
        *(client.put(f"{POSTS}{post.id}/favorite", headers=headers) for _ in range(6))
    )

    assert [response.status_code for response in responses] == [200] * 6
    assert await count_of(session, Favorite) == 1


@pytest.mark.usefixtures("postgresql_only")
async def test_a_favorite_racing_the_posts_deletion_waits_for_it_and_finds_it_gone(
    client: httpx.AsyncClient, session: AsyncSession, database_url: str
) -> None:
    post = await make_post(session, await make_user(session))
    headers = await auth_headers(client, await make_user(session))

    response = await racing_an_uncommitted_change(
        database_url,
        delete(Post).where(Post.id == post.id),
        client.put(f"{POSTS}{post.id}/favorite", headers=headers),
    )

    assert_problem(response, 404, "post_not_found")
    assert await count_of(session, Favorite) == 0


@pytest.mark.usefixtures("postgresql_only")
async def test_a_comment_racing_the_posts_deletion_waits_for_it_and_finds_it_gone(
    client: httpx.AsyncClient, session: AsyncSession, database_url: str
) -> None:
    post = await make_post(session, await make_user(session))
    headers = await auth_headers(client, await make_user(session))

    response = await racing_an_uncommitted_change(
        database_url,
        delete(Post).where(Post.id == post.id),
        client.post(f"{POSTS}{post.id}/comments", json={"body": "Hi."}, headers=headers),
    )

    assert_problem(response, 404, "post_not_found")
    assert await count_of(session, Comment) == 0


@pytest.mark.usefixtures("postgresql_only")
async def test_a_follow_racing_the_users_deletion_is_a_404_not_a_crash(
    client: httpx.AsyncClient, session: AsyncSession, database_url: str
) -> None:
    bob = await make_user(session, username="bob")
    headers = await auth_headers(client, await make_user(session, username="ann"))

    response = await racing_an_uncommitted_change(
        database_url,
        delete(User).where(User.id == bob.id),
        client.put(f"/api/v1/users/{bob.id}/follow", headers=headers),
    )

    assert_problem(response, 404, "user_not_found")
    assert await count_of(session, Follow) == 0


async def test_a_comment_list_is_two_statements_whatever_its_size(
    serve: Serve, settings: Settings
) -> None:
    app = create_app(settings.model_copy(update={"CACHE_BACKEND": CacheBackend.OFF}))
    async with serve(app) as client, open_session(app.state.database) as session:
        post = await make_post(session, await make_user(session))
        url = f"{POSTS}{post.id}/comments"

        async def add_comments(count: int) -> None:
            for _ in range(count):
                author = await make_user(session)
                session.add(Comment(post_id=post.id, author_id=author.id, body="Hi."))
            await session.commit()

        await add_comments(2)
        small = await _list_statements(app, client, url, {})
        await add_comments(18)
        large = await _list_statements(app, client, url, {})

    # The post is looked up first (404), then a page and a count.
    assert small == large == 3


async def test_the_tags_in_use_refuse_a_token_that_fails(client: httpx.AsyncClient) -> None:
    response = await client.get(TAGS, headers={"Authorization": "Bearer not-a-jwt"})

    assert_problem(response, 401, "invalid_token")


async def test_a_slug_taken_between_the_check_and_the_insert_is_tried_again_then_given_up(
    app: FastAPI, session: AsyncSession, monkeypatch: pytest.MonkeyPatch
) -> None:
    # What a concurrent writer does to a candidate on PostgreSQL, made certain: every suffix
    # clashes, so each insert after the check meets the unique constraint.
    ann = await make_user(session, username="ann")
    monkeypatch.setattr(slugs, "with_suffix", lambda base: f"{base}-taken")
    database = app.state.database
    for title in ("Garlic", "Garlic", "Tulips"):
        async with database.transaction() as writing:
            await posts_service.create(writing, ann, title=title, content="c")

    async def create_a_third_garlic() -> None:
        async with database.transaction() as writing:
            await posts_service.create(writing, ann, title="Garlic", content="c")

    async def rename_tulips_to_garlic() -> None:
        async with database.transaction() as writing:
            post = await posts_service.get_editable(writing, ann, slug="tulips")
            changes = posts_service.PostChanges(title="Garlic")
            await posts_service.update(writing, post, changes, viewer=ann)

    with pytest.raises(RuntimeError, match="no free slug"):
        await create_a_third_garlic()
    with pytest.raises(RuntimeError, match="no free slug"):
        await rename_tulips_to_garlic()

    slugs_now = await session.scalars(select(Post.slug).order_by(Post.id))
    assert list(slugs_now) == ["garlic", "garlic-taken", "tulips"]


@pytest.mark.parametrize(
    "params",
    [
        {"favorited_by": "a\x00b"},
        {"favorited_by": "ann smith"},
        {"favorited_by": ""},
        {"tag": "a\x00b"},
        {"tag": ""},
        {"tag": "x" * (TAG_MAX_LENGTH + 1)},
    ],
)
async def test_list_filters_that_can_name_nothing_are_refused_with_422(
    client: httpx.AsyncClient, params: dict[str, str]
) -> None:
    assert_problem(await client.get(POSTS, params=params), 422, "validation_failed")


async def test_a_deactivated_users_favorites_are_not_counted_nor_listed(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    post = await make_post(session, await make_user(session))
    admin = await make_user(session, username="root", is_superuser=True)
    fans = [await make_user(session, username=name) for name in ("ann", "gone")]
    for fan in fans:
        session.add(Favorite(user_id=fan.id, post_id=post.id))
    fans[1].is_active = False
    await session.commit()

    seen = (await client.get(f"{POSTS}{post.id}")).json()
    favored_by_gone = await client.get(POSTS, params={"favorited_by": "gone"})
    by_admin = await client.get(
        POSTS, params={"favorited_by": "gone"}, headers=await auth_headers(client, admin)
    )

    assert seen["favorites_count"] == 1
    assert favored_by_gone.json()["total"] == 0
    assert by_admin.json()["total"] == 1


async def test_edits_tell_listeners_every_slug_the_post_had_or_has(
    app: FastAPI, client: httpx.AsyncClient, session: AsyncSession
) -> None:
    heard: list[PostChanged] = []
    app.state.database.events.subscribe(PostChanged, heard.append)
    headers = await auth_headers(client, await make_user(session))
    post = await create(client, headers, title="Garlic")
    url = f"{POSTS}{post['id']}"

    await client.patch(url, json={"content": "Later."}, headers=headers)
    await client.patch(url, json={"title": "Tulips"}, headers=headers)
    await client.put(f"{url}/favorite", headers=headers)
    await client.post(f"{url}/comments", json={"body": "Hi."}, headers=headers)
    await client.delete(url, headers=headers)

    assert [event.slugs for event in heard] == [
        ("garlic",),
        ("garlic",),
        ("garlic", "tulips"),
        ("tulips",),
        ("tulips",),
        ("tulips",),
    ]
    assert {event.post_id for event in heard} == {post["id"]}
