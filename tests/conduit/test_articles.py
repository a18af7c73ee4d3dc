"""Conduit's articles, favorites, feed and tags: Quill's posts in the contract's wire format."""

import re
from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from tests.conduit.helpers import assert_errors, assert_unauthorized, sign_up, token
from tests.factories import bearer, login, make_user

ARTICLES = "/api/articles"
TIMESTAMP = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$")
SUMMARY_FIELDS = {
    "slug",
    "title",
    "description",
    "tagList",
    "createdAt",
    "updatedAt",
    "favorited",
    "favoritesCount",
    "author",
}


async def create(
    client: httpx.AsyncClient,
    access_token: str,
    title: str = "How to train your dragon",
    **more: Any,
) -> dict[str, Any]:
    article = {"title": title, "description": "Ever wonder how?", "body": "It takes a Jacobian"}
    response = await client.post(
        ARTICLES, json={"article": {**article, **more}}, headers=token(access_token)
    )
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()["article"]
    return created


async def test_an_article_is_created_and_read_in_the_contracts_format(
    client: httpx.AsyncClient,
) -> None:
    jake = await sign_up(client, "jake")

    created = await create(
        client, jake["token"], tagList=["dragons", " ", "training", "", "dragons"]
    )
    read = await client.get(f"{ARTICLES}/{created['slug']}")

    assert set(created) == SUMMARY_FIELDS | {"body"}
    assert created["title"] == "How to train your dragon"
    assert created["slug"] == "how-to-train-your-dragon"
    assert (created["description"], created["body"]) == ("Ever wonder how?", "It takes a Jacobian")
    assert created["tagList"] == ["dragons", "training"]
    assert TIMESTAMP.match(created["createdAt"]), created["createdAt"]
    assert created["updatedAt"] == created["createdAt"]
    assert (created["favorited"], created["favoritesCount"]) == (False, 0)
    assert created["author"] == {"username": "jake", "bio": None, "image": None, "following": False}
    assert read.status_code == 200
    assert read.json() == {"article": created}


async def test_duplicate_titles_get_distinct_slugs(client: httpx.AsyncClient) -> None:
    jake = await sign_up(client, "jake")

    first = await create(client, jake["token"], "Dup Title")
    second = await create(client, jake["token"], "Dup Title")

    assert first["slug"] != second["slug"]
    for article in (first, second):
        assert (await client.get(f"{ARTICLES}/{article['slug']}")).status_code == 200


@pytest.mark.parametrize(
    ("changes", "errors"),
    [
        ({"title": ""}, {"title": ["can't be blank"]}),
        ({"description": ""}, {"description": ["can't be blank"]}),
        ({"title": " "}, {"title": ["can't be blank"]}),
        ({"body": ""}, {"body": ["can't be blank"]}),
        ({"title": None}, None),
        ({"tagList": "dragons"}, None),
        ({"tagList": ["a\x01"]}, None),
        ({"tagList": [f"t{n}" for n in range(21)]}, None),
        ({"title": "x" * 201}, None),
    ],
)
async def test_invalid_articles_are_refused_and_make_nothing(
    client: httpx.AsyncClient, changes: dict[str, Any], errors: dict[str, list[str]] | None
) -> None:
    jake = await sign_up(client, "jake")
    article = {"title": "T", "description": "D", "body": "B", **changes}

    response = await client.post(ARTICLES, json={"article": article}, headers=token(jake["token"]))

    found = assert_errors(response, 422, errors)
    assert list(found) == list(changes)
    listed = await client.get(ARTICLES)
    assert listed.json() == {"articles": [], "articlesCount": 0}


async def test_writes_without_a_token_are_401_before_anything_is_looked_up(
    client: httpx.AsyncClient,
) -> None:
    for response in (
        await client.post(ARTICLES, json={"article": {"title": "x"}}),
        await client.put(f"{ARTICLES}/no-such-slug", json={"article": {"body": "x"}}),
        await client.delete(f"{ARTICLES}/no-such-slug"),
        await client.post(f"{ARTICLES}/no-such-slug/favorite"),
        await client.delete(f"{ARTICLES}/no-such-slug/favorite"),
        await client.get(f"{ARTICLES}/feed"),
    ):
        assert_unauthorized(response, "is missing")


async def test_unknown_slugs_are_article_not_found(client: httpx.AsyncClient) -> None:
    jake = await sign_up(client, "jake")
    headers = token(jake["token"])

    for response in (
        await client.get(f"{ARTICLES}/no-such-slug"),
        await client.put(
            f"{ARTICLES}/no-such-slug", json={"article": {"body": "x"}}, headers=headers
        ),
        await client.delete(f"{ARTICLES}/no-such-slug", headers=headers),
        await client.post(f"{ARTICLES}/no-such-slug/favorite", headers=headers),
        await client.delete(f"{ARTICLES}/no-such-slug/favorite", headers=headers),
    ):
        assert_errors(response, 404, {"article": ["not found"]})


async def test_updates_keep_what_they_leave_out_and_a_new_title_moves_the_slug(
    client: httpx.AsyncClient,
) -> None:
    jake = await sign_up(client, "jake")
    headers = token(jake["token"])
    created = await create(client, jake["token"], tagList=["dragons", "training"])
    url = f"{ARTICLES}/{created['slug']}"

    body_only = await client.put(url, json={"article": {"body": "New body"}}, headers=headers)
    refused_null = await client.put(url, json={"article": {"tagList": None}}, headers=headers)
    cleared = await client.put(url, json={"article": {"tagList": []}}, headers=headers)
    renamed = await client.put(
        url, json={"article": {"title": "Did you train your dragon?"}}, headers=headers
    )
    new_url = f"{ARTICLES}/{renamed.json()['article']['slug']}"

    assert body_only.status_code == 200, body_only.text
    updated = body_only.json()["article"]
    assert (updated["slug"], updated["body"], updated["tagList"]) == (
        created["slug"],
        "New body",
        ["dragons", "training"],
    )
    assert updated["createdAt"] == created["createdAt"]
    assert updated["updatedAt"] > created["updatedAt"]
    assert list(assert_errors(refused_null, 422)) == ["tagList"]
    assert cleared.json()["article"]["tagList"] == []
    assert renamed.json()["article"]["slug"] == "did-you-train-your-dragon"
    read = (await client.get(new_url)).json()["article"]
    assert (read["title"], read["body"], read["tagList"]) == (
        "Did you train your dragon?",
        "New body",
        [],
    )


async def test_another_users_article_is_forbidden_to_change_and_stays(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    jake = await sign_up(client, "jake")
    mallory = await sign_up(client, "mallory")
    created = await create(client, jake["token"])
    url = f"{ARTICLES}/{created['slug']}"

    edit = await client.put(
        url, json={"article": {"body": "hijacked"}}, headers=token(mallory["token"])
    )
    delete = await client.delete(url, headers=token(mallory["token"]))
    admin = await make_user(session, username="root", is_superuser=True)
    admin_headers = bearer((await login(client, admin.username))["access_token"])
    by_admin = await client.put(url, json={"article": {"body": "moderated"}}, headers=admin_headers)

    assert_errors(edit, 403, {"article": ["forbidden"]})
    assert_errors(delete, 403, {"article": ["forbidden"]})
    assert by_admin.status_code == 200, by_admin.text
    assert (await client.get(url)).json()["article"]["body"] == "moderated"


async def test_deleting_an_article_is_204_and_it_is_gone(client: httpx.AsyncClient) -> None:
    jake = await sign_up(client, "jake")
    created = await create(client, jake["token"])
    url = f"{ARTICLES}/{created['slug']}"

    deleted = await client.delete(url, headers=token(jake["token"]))

    assert deleted.status_code == 204
    assert deleted.content == b""
    assert_errors(await client.get(url), 404, {"article": ["not found"]})


async def test_lists_are_newest_first_without_bodies_and_count_the_whole_list(
    client: httpx.AsyncClient,
) -> None:
    jake = await sign_up(client, "jake")
    ann = await sign_up(client, "ann")
    first = await create(client, jake["token"], "One", tagList=["dragons"])
    second = await create(client, jake["token"], "Two")
    third = await create(client, ann["token"], "Three", tagList=["dragons"])

    everything = (await client.get(ARTICLES)).json()
    page = (await client.get(ARTICLES, params={"limit": 1, "offset": 1})).json()
    by_author = (await client.get(ARTICLES, params={"author": "JAKE"})).json()
    by_tag = (await client.get(ARTICLES, params={"tag": "dragons"})).json()
    nobody = (await client.get(ARTICLES, params={"author": "nobody"})).json()

    assert [a["slug"] for a in everything["articles"]] == [
        third["slug"],
        second["slug"],
        first["slug"],
    ]
    assert everything["articlesCount"] == 3
    assert all(set(a) == SUMMARY_FIELDS for a in everything["articles"])
    assert ([a["slug"] for a in page["articles"]], page["articlesCount"]) == ([second["slug"]], 3)
    assert [a["slug"] for a in by_author["articles"]] == [second["slug"], first["slug"]]
    assert by_author["articlesCount"] == 2
    assert [a["slug"] for a in by_tag["articles"]] == [third["slug"], first["slug"]]
    assert nobody == {"articles": [], "articlesCount": 0}


@pytest.mark.parametrize(
    "query",
    [{"limit": 0}, {"limit": 101}, {"offset": -1}, {"limit": "ten"}, {"offset": "1.0"}],
)
async def test_pagination_out_of_bounds_is_refused(
    client: httpx.AsyncClient, query: dict[str, Any]
) -> None:
    jake = await sign_up(client, "jake")

    for response in (
        await client.get(ARTICLES, params=query),
        await client.get(f"{ARTICLES}/feed", params=query, headers=token(jake["token"])),
    ):
        assert list(assert_errors(response, 422)) == list(query)


async def test_pagination_at_its_bounds_is_served(client: httpx.AsyncClient) -> None:
    jake = await sign_up(client, "jake")
    await create(client, jake["token"])

    largest = await client.get(ARTICLES, params={"limit": 100})
    past_the_end = await client.get(ARTICLES, params={"offset": 5})

    assert largest.json()["articlesCount"] == 1
    assert past_the_end.json() == {"articles": [], "articlesCount": 1}


async def test_favorites_count_show_to_the_favoriter_and_filter_lists(
    client: httpx.AsyncClient,
) -> None:
    jake = await sign_up(client, "jake")
    ann = await sign_up(client, "ann")
    created = await create(client, jake["token"])
    url = f"{ARTICLES}/{created['slug']}"

    favorited = await client.post(f"{url}/favorite", headers=token(ann["token"]))
    again = await client.post(f"{url}/favorite", headers=token(ann["token"]))
    seen_by_ann = await client.get(url, headers=token(ann["token"]))
    seen_by_anyone = await client.get(url)
    ann_favorites = await client.get(ARTICLES, params={"favorited": "ann"})
    unfavorited = await client.delete(f"{url}/favorite", headers=token(ann["token"]))
    after = await client.get(ARTICLES, params={"favorited": "ann"})

    assert favorited.status_code == 200, favorited.text
    assert (
        favorited.json()["article"]["favorited"],
        favorited.json()["article"]["favoritesCount"],
    ) == (True, 1)
    assert again.json()["article"]["favoritesCount"] == 1
    assert seen_by_ann.json()["article"]["favorited"] is True
    assert (
        seen_by_anyone.json()["article"]["favorited"],
        seen_by_anyone.json()["article"]["favoritesCount"],
    ) == (False, 1)
    assert [a["slug"] for a in ann_favorites.json()["articles"]] == [created["slug"]]
    assert (
        unfavorited.json()["article"]["favorited"],
        unfavorited.json()["article"]["favoritesCount"],
    ) == (False, 0)
    assert after.json() == {"articles": [], "articlesCount": 0}


async def test_the_feed_is_the_followed_authors_articles(client: httpx.AsyncClient) -> None:
    reader = await sign_up(client, "reader")
    celeb = await sign_up(client, "celeb")
    other = await sign_up(client, "other")
    headers = token(reader["token"])
    empty = await client.get(f"{ARTICLES}/feed", headers=headers)
    followed = await client.post("/api/profiles/celeb/follow", headers=headers)
    one = await create(client, celeb["token"], "One")
    two = await create(client, celeb["token"], "Two")
    await create(client, other["token"], "Elsewhere")

    feed = (await client.get(f"{ARTICLES}/feed", headers=headers)).json()
    first_page = (await client.get(f"{ARTICLES}/feed", params={"limit": 1}, headers=headers)).json()

    assert empty.json() == {"articles": [], "articlesCount": 0}
    assert followed.json()["profile"]["following"] is True
    assert [a["slug"] for a in feed["articles"]] == [two["slug"], one["slug"]]
    assert feed["articlesCount"] == 2
    assert all("body" not in a for a in feed["articles"])
    assert feed["articles"][0]["author"]["following"] is True
    assert (len(first_page["articles"]), first_page["articlesCount"]) == (1, 2)


async def test_tags_are_every_tag_in_use_sorted(client: httpx.AsyncClient) -> None:
    jake = await sign_up(client, "jake")
    empty = await client.get("/api/tags")
    created = await create(client, jake["token"], tagList=["training", "dragons"])
    await create(client, jake["token"], "Two", tagList=["angular"])

    tags = await client.get("/api/tags")
    await client.delete(f"{ARTICLES}/{created['slug']}", headers=token(jake["token"]))
    after = await client.get("/api/tags")

    assert empty.json() == {"tags": []}
    assert tags.json() == {"tags": ["angular", "dragons", "training"]}
    assert after.json() == {"tags": ["angular"]}


async def test_a_post_written_natively_is_an_article_and_back(client: httpx.AsyncClient) -> None:
    jake = await sign_up(client, "jake")
    native_headers = bearer((await login(client, "jake", "password123"))["access_token"])

    native = await client.post(
        "/api/v1/posts/",
        json={"title": "Native", "content": "Written on /api/v1", "tags": ["x"]},
        headers=native_headers,
    )
    article = await create(client, jake["token"], "From Conduit")
    listed = (await client.get(ARTICLES)).json()
    native_list = (await client.get("/api/v1/posts/")).json()

    assert native.status_code == 201, native.text
    assert [a["title"] for a in listed["articles"]] == ["From Conduit", "Native"]
    assert listed["articles"][1]["tagList"] == ["x"]
    assert {post["title"] for post in native_list["items"]} == {"Native", "From Conduit"}
    assert article["slug"] in {post["slug"] for post in native_list["items"]}


async def test_public_reads_refuse_a_token_that_fails_rather_than_serve_it_as_anonymous(
    client: httpx.AsyncClient,
) -> None:
    jake = await sign_up(client, "jake")
    article = await create(client, jake["token"])

    for url in (
        ARTICLES,
        f"{ARTICLES}/{article['slug']}",
        f"{ARTICLES}/{article['slug']}/comments",
        "/api/profiles/jake",
        "/api/tags",
    ):
        assert_unauthorized(await client.get(url, headers=token("not-a-jwt")))
