"""Conduit's profiles (and following) and comments."""

from typing import Any

import httpx
from sqlalchemy.ext.asyncio import AsyncSession

from tests.conduit.helpers import assert_errors, assert_unauthorized, sign_up, token
from tests.conduit.test_articles import TIMESTAMP, create
from tests.factories import bearer, login, make_user


async def comment(
    client: httpx.AsyncClient, slug: str, access_token: str, body: str = "Nice."
) -> dict[str, Any]:
    response = await client.post(
        f"/api/articles/{slug}/comments",
        json={"comment": {"body": body}},
        headers=token(access_token),
    )
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()["comment"]
    return created


# --- Profiles ----------------------------------------------------------------------------------


async def test_a_profile_says_whether_the_caller_follows_it(client: httpx.AsyncClient) -> None:
    reader = await sign_up(client, "reader")
    celeb = await sign_up(client, "celeb")
    headers = token(reader["token"])
    await client.put("/api/user", json={"user": {"bio": "Famous."}}, headers=token(celeb["token"]))

    anonymous = await client.get("/api/profiles/celeb")
    before = await client.get("/api/profiles/Celeb", headers=headers)
    followed = await client.post("/api/profiles/celeb/follow", headers=headers)
    again = await client.post("/api/profiles/celeb/follow", headers=headers)
    after = await client.get("/api/profiles/celeb", headers=headers)
    unfollowed = await client.delete("/api/profiles/celeb/follow", headers=headers)

    assert anonymous.json() == {
        "profile": {"username": "celeb", "bio": "Famous.", "image": None, "following": False}
    }
    assert before.json()["profile"]["following"] is False
    assert followed.json()["profile"]["following"] is True
    assert again.json()["profile"]["following"] is True
    assert after.json()["profile"]["following"] is True
    assert unfollowed.json()["profile"]["following"] is False
    assert (await client.get("/api/profiles/celeb", headers=headers)).json()["profile"][
        "following"
    ] is False


async def test_unknown_profiles_are_profile_not_found_and_follows_need_a_token(
    client: httpx.AsyncClient,
) -> None:
    reader = await sign_up(client, "reader")

    assert_errors(await client.get("/api/profiles/nobody"), 404, {"profile": ["not found"]})
    for method in ("POST", "DELETE"):
        anonymous = await client.request(method, "/api/profiles/nobody/follow")
        unknown = await client.request(
            method, "/api/profiles/nobody/follow", headers=token(reader["token"])
        )
        assert_unauthorized(anonymous, "is missing")
        assert_errors(unknown, 404, {"profile": ["not found"]})


async def test_nobody_follows_themselves(client: httpx.AsyncClient) -> None:
    reader = await sign_up(client, "reader")

    response = await client.post("/api/profiles/reader/follow", headers=token(reader["token"]))

    assert list(assert_errors(response, 409)) == ["profile"]


async def test_a_deactivated_users_profile_and_articles_are_hidden(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    gone = await sign_up(client, "gone")
    created = await create(client, gone["token"])
    admin = await make_user(session, username="root", is_superuser=True)
    admin_headers = bearer((await login(client, admin.username))["access_token"])
    users = (await client.get("/api/v1/users/", headers=admin_headers)).json()["items"]
    gone_id = next(user["id"] for user in users if user["username"] == "gone")

    await client.patch(f"/api/v1/users/{gone_id}", json={"is_active": False}, headers=admin_headers)

    assert_errors(await client.get("/api/profiles/gone"), 404, {"profile": ["not found"]})
    assert_errors(
        await client.get(f"/api/articles/{created['slug']}"), 404, {"article": ["not found"]}
    )
    assert (await client.get("/api/articles")).json()["articlesCount"] == 0
    as_admin = await client.get("/api/profiles/gone", headers=admin_headers)
    assert as_admin.status_code == 200


# --- Comments ----------------------------------------------------------------------------------


async def test_comments_are_added_listed_oldest_first_and_deleted(
    client: httpx.AsyncClient,
) -> None:
    jake = await sign_up(client, "jake")
    ann = await sign_up(client, "ann")
    article = await create(client, jake["token"])
    url = f"/api/articles/{article['slug']}/comments"

    first = await comment(client, article["slug"], ann["token"], "First!")
    second = await comment(client, article["slug"], jake["token"], "Second.")
    listed = await client.get(url)
    deleted = await client.delete(f"{url}/{first['id']}", headers=token(ann["token"]))
    after = await client.get(url, headers=token(jake["token"]))

    assert set(first) == {"id", "createdAt", "updatedAt", "body", "author"}
    assert isinstance(first["id"], int)
    assert TIMESTAMP.match(first["createdAt"])
    assert first["author"] == {"username": "ann", "bio": None, "image": None, "following": False}
    assert listed.json() == {"comments": [first, second]}
    assert deleted.status_code == 204
    assert after.json() == {"comments": [second]}


async def test_comment_errors_in_the_contracts_words(client: httpx.AsyncClient) -> None:
    jake = await sign_up(client, "jake")
    headers = token(jake["token"])
    article = await create(client, jake["token"])
    url = f"/api/articles/{article['slug']}/comments"

    blank = await client.post(url, json={"comment": {"body": " "}}, headers=headers)
    no_token = await client.post(url, json={"comment": {"body": "x"}})
    delete_no_token = await client.delete(f"{url}/1")
    unknown_article = await client.post(
        "/api/articles/no-such-slug/comments", json={"comment": {"body": "x"}}, headers=headers
    )
    list_unknown = await client.get("/api/articles/no-such-slug/comments")
    delete_unknown_article = await client.delete(
        "/api/articles/no-such-slug/comments/99999", headers=headers
    )
    delete_unknown = await client.delete(f"{url}/99999", headers=headers)
    bad_id = await client.delete(f"{url}/007", headers=headers)

    assert_errors(blank, 422, {"body": ["can't be blank"]})
    assert_unauthorized(no_token, "is missing")
    assert_unauthorized(delete_no_token, "is missing")
    for response in (unknown_article, list_unknown, delete_unknown_article):
        assert_errors(response, 404, {"article": ["not found"]})
    assert_errors(delete_unknown, 404, {"comment": ["not found"]})
    assert list(assert_errors(bad_id, 422)) == ["id"]
    assert (await client.get(url)).json() == {"comments": []}


async def test_another_users_comment_is_forbidden_and_one_of_another_article_not_found(
    client: httpx.AsyncClient,
) -> None:
    jake = await sign_up(client, "jake")
    mallory = await sign_up(client, "mallory")
    article = await create(client, jake["token"])
    other = await create(client, jake["token"], "Another")
    kept = await comment(client, article["slug"], jake["token"], "Mine.")

    forbidden = await client.delete(
        f"/api/articles/{article['slug']}/comments/{kept['id']}", headers=token(mallory["token"])
    )
    elsewhere = await client.delete(
        f"/api/articles/{other['slug']}/comments/{kept['id']}", headers=token(jake["token"])
    )

    assert_errors(forbidden, 403, {"comment": ["forbidden"]})
    assert_errors(elsewhere, 404, {"comment": ["not found"]})
    listed = await client.get(f"/api/articles/{article['slug']}/comments")
    assert listed.json() == {"comments": [kept]}
