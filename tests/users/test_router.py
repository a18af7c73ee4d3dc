"""The users API through HTTP: sign-up, one's own account, public profiles, administration."""

from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.models import Post, User
from app.users.events import UserChanged, UserDeleted
from tests.factories import DEFAULT_PASSWORD, auth_headers, bearer, login, make_post, make_user
from tests.helpers import (
    assert_problem,
    committing_once,
    connections_during_hashing,
    count_users,
    on_hashing,
    racing_an_uncommitted_change,
)

USERS = "/api/v1/users/"
ME = "/api/v1/users/me"
TOKEN = "/api/v1/auth/token"
PROBLEM_MEDIA_TYPE = "application/problem+json"
USER_READ_KEYS = {
    "id",
    "username",
    "email",
    "bio",
    "image",
    "email_verified",
    "is_superuser",
    "created_at",
}
ADMIN_USER_READ_KEYS = USER_READ_KEYS | {"is_active", "updated_at"}
PUBLIC_PROFILE_KEYS = {"id", "username", "bio", "image", "created_at", "following"}
NEW_PASSWORD = "a brand new passphrase"
MISSING_ID = 999_999


def error_fields(body: dict[str, Any]) -> set[str | int]:
    """The body fields named by a validation problem (`loc` is ["body", field, ...])."""
    return {error["loc"][1] for error in body["errors"] if len(error["loc"]) > 1}


async def stored_user(session: AsyncSession, user_id: int) -> User | None:
    """The user's row as committed now (the app writes through its own sessions)."""
    statement = select(User).where(User.id == user_id).execution_options(populate_existing=True)
    user = await session.scalar(statement)
    # End the read: on SQLite an open transaction of this session would block the app's writes.
    await session.commit()
    return user


async def count_posts_by(session: AsyncSession, author_id: int) -> int:
    statement = select(func.count()).select_from(Post).where(Post.author_id == author_id)
    count = await session.scalar(statement)
    await session.commit()
    return count or 0


async def login_status(client: httpx.AsyncClient, username: str, password: str) -> int:
    response = await client.post(TOKEN, data={"username": username, "password": password})
    return response.status_code


# POST /users/ ------------------------------------------------------------------------------


async def test_register_returns_the_account_with_a_location_and_stores_the_email_lowercased(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    payload = {"username": "Ann", "email": "Ann@Example.COM", "password": DEFAULT_PASSWORD}

    response = await client.post(USERS, json=payload)

    assert response.status_code == 201, response.text
    body = response.json()
    assert set(body) == USER_READ_KEYS
    assert isinstance(body["id"], int)
    assert body["username"] == "Ann"
    assert body["email"] == "ann@example.com"
    assert body["bio"] is None
    assert body["image"] is None
    assert body["email_verified"] is False
    assert body["is_superuser"] is False
    assert response.headers["location"].endswith(f"/api/v1/users/{body['id']}")
    profile = await client.get(response.headers["location"])
    assert profile.status_code == 200
    assert profile.json()["id"] == body["id"]
    user = await stored_user(session, body["id"])
    assert user is not None
    assert (user.username, user.username_key, user.email) == ("Ann", "ann", "ann@example.com")
    assert user.is_superuser is False
    assert user.is_active is True
    assert user.hashed_password != DEFAULT_PASSWORD
    assert user.hashed_password not in response.text
    assert await login_status(client, "ann@example.com", DEFAULT_PASSWORD) == 200


@pytest.mark.parametrize(
    ("existing", "payload", "code"),
    [
        pytest.param(
            {"username": "Ann", "email": "ann@example.com"},
            {"username": "ann", "email": "other@example.com"},
            "username_taken",
            id="username-lower-vs-Ann",
        ),
        pytest.param(
            {"username": "ann", "email": "ann@example.com"},
            {"username": "ANN", "email": "other@example.com"},
            "username_taken",
            id="username-ANN-vs-ann",
        ),
        pytest.param(
            {"username": "ann", "email": "a@x.com"},
            {"username": "bob", "email": "A@X.com"},
            "email_taken",
            id="email-A@X.com-vs-a@x.com",
        ),
        pytest.param(
            {"username": "ann", "email": "a@x.com"},
            {"username": "bob", "email": "a@x.com"},
            "email_taken",
            id="email-same",
        ),
    ],
)
async def test_register_rejects_a_taken_username_or_email_case_insensitively(
    client: httpx.AsyncClient,
    session: AsyncSession,
    existing: dict[str, str],
    payload: dict[str, str],
    code: str,
) -> None:
    await make_user(session, username=existing["username"], email=existing["email"])

    response = await client.post(USERS, json={**payload, "password": DEFAULT_PASSWORD})

    assert_problem(response, 409, code)
    assert DEFAULT_PASSWORD not in response.text
    assert await count_users(session) == 1


SEVEN_CHAR_PASSWORD = "S3cr#t7"
LONG_PASSWORD = ("S3cr#t-" * 20)[:129]


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        pytest.param({"email": "not-an-email"}, "email", id="email-no-at"),
        pytest.param({"email": "a@b"}, "email", id="email-no-dot"),
        pytest.param({"email": "ann@"}, "email", id="email-no-domain"),
        pytest.param({"email": "@example.com"}, "email", id="email-no-local-part"),
        pytest.param({"email": "ann@@example.com"}, "email", id="email-two-ats"),
        pytest.param({"username": "ab"}, "username", id="username-2-chars"),
        pytest.param({"username": "a" * 33}, "username", id="username-33-chars"),
        pytest.param({"username": ""}, "username", id="username-empty"),
        pytest.param({"username": "ann smith"}, "username", id="username-space"),
        pytest.param({"username": "ann@home"}, "username", id="username-at"),
        pytest.param({"username": "josé"}, "username", id="username-accent"),
        pytest.param({"username": "ann\n"}, "username", id="username-trailing-newline"),
        pytest.param({"username": "ann!"}, "username", id="username-bang"),
        pytest.param({"password": SEVEN_CHAR_PASSWORD}, "password", id="password-7-chars"),
        pytest.param({"password": LONG_PASSWORD}, "password", id="password-129-chars"),
        pytest.param({"password": None}, "password", id="password-null"),
        pytest.param({"is_superuser": True}, "is_superuser", id="unknown-field-is_superuser"),
        pytest.param({"is_active": False}, "is_active", id="unknown-field-is_active"),
    ],
)
async def test_register_rejects_invalid_input_without_echoing_it_or_creating_a_user(
    client: httpx.AsyncClient, session: AsyncSession, changes: dict[str, Any], field: str
) -> None:
    payload = {"username": "ann", "email": "ann@example.com", "password": DEFAULT_PASSWORD}
    payload.update(changes)

    response = await client.post(USERS, json=payload)

    body = assert_problem(response, 422, "validation_failed")
    assert field in error_fields(body)
    for error in body["errors"]:
        assert set(error) == {"loc", "msg", "type"}
    if isinstance(payload["password"], str):
        assert payload["password"] not in response.text
    assert await count_users(session) == 0


async def test_register_rejects_a_body_without_a_password(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    response = await client.post(USERS, json={"username": "ann", "email": "ann@example.com"})

    body = assert_problem(response, 422, "validation_failed")
    assert error_fields(body) == {"password"}
    assert await count_users(session) == 0


@pytest.mark.parametrize(
    ("username", "password"),
    [
        pytest.param("abc", DEFAULT_PASSWORD, id="username-3-chars"),
        pytest.param("a" * 32, DEFAULT_PASSWORD, id="username-32-chars"),
        pytest.param("a_b.c-d", DEFAULT_PASSWORD, id="username-punctuation"),
        pytest.param("_.-", DEFAULT_PASSWORD, id="username-only-punctuation"),
        pytest.param("Zed42", "p" * 8, id="password-8-chars"),
        pytest.param("Zed42", "p" * 128, id="password-128-chars"),
    ],
)
async def test_register_accepts_edge_values(
    client: httpx.AsyncClient, session: AsyncSession, username: str, password: str
) -> None:
    response = await client.post(
        USERS, json={"username": username, "email": "edge@example.com", "password": password}
    )

    assert response.status_code == 201, response.text
    assert response.json()["username"] == username
    assert await count_users(session) == 1
    assert await login_status(client, username, password) == 200


async def test_no_users_response_contains_the_password_hash(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    admin = await make_user(session, username="root", is_superuser=True)
    admin_headers = await auth_headers(client, admin)
    created = await client.post(
        USERS, json={"username": "ann", "email": "ann@example.com", "password": DEFAULT_PASSWORD}
    )
    user_id = created.json()["id"]
    headers = bearer((await login(client, "ann"))["access_token"])
    responses = [
        created,
        await client.post(
            USERS,
            json={"username": "ann", "email": "ann2@example.com", "password": DEFAULT_PASSWORD},
        ),
        await client.get(ME, headers=headers),
        await client.patch(ME, json={"bio": "Hello"}, headers=headers),
        await client.patch(ME, json={"password": "short"}, headers=headers),
        await client.get(f"{USERS}{user_id}"),
        await client.get(USERS, headers=admin_headers),
        await client.patch(f"{USERS}{user_id}", json={"is_active": True}, headers=admin_headers),
    ]

    user = await stored_user(session, user_id)
    assert user is not None
    for response in responses:
        assert response.status_code < 500, response.text
        assert "hashed_password" not in response.text
        assert "$argon2" not in response.text
        assert user.hashed_password not in response.text
        assert DEFAULT_PASSWORD not in response.text


# GET, PATCH, DELETE /users/me ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "json"),
    [("GET", None), ("PATCH", {"bio": "Hello"}), ("DELETE", None)],
)
@pytest.mark.parametrize(
    ("headers", "code"),
    [({}, "not_authenticated"), ({"Authorization": "Bearer not-a-token"}, "invalid_token")],
    ids=["no-token", "bad-token"],
)
async def test_own_account_endpoints_require_a_valid_token(
    client: httpx.AsyncClient,
    session: AsyncSession,
    method: str,
    json: dict[str, Any] | None,
    headers: dict[str, str],
    code: str,
) -> None:
    user = await make_user(session, username="ann")

    response = await client.request(method, ME, json=json, headers=headers)

    assert_problem(response, 401, code)
    assert response.headers["www-authenticate"] == "Bearer"
    stored = await stored_user(session, user.id)
    assert stored is not None
    assert stored.bio is None


async def test_read_me_returns_the_callers_account(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    user = await make_user(session, username="ann", bio="Hi")
    await make_user(session, username="bob")

    response = await client.get(ME, headers=await auth_headers(client, user))

    assert response.status_code == 200
    body = response.json()
    assert set(body) == USER_READ_KEYS
    assert (body["id"], body["username"], body["email"]) == (user.id, "ann", "ann@example.com")
    assert body["bio"] == "Hi"


async def test_update_me_changes_bio_image_and_username(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    user = await make_user(session, username="ann")
    changes = {"bio": "Writer.", "image": "https://example.com/ann.png", "username": "Carol"}

    response = await client.patch(ME, json=changes, headers=await auth_headers(client, user))

    assert response.status_code == 200, response.text
    body = response.json()
    assert set(body) == USER_READ_KEYS
    assert {key: body[key] for key in changes} == changes
    stored = await stored_user(session, user.id)
    assert stored is not None
    assert (stored.username, stored.username_key) == ("Carol", "carol")
    assert (stored.bio, stored.image) == ("Writer.", "https://example.com/ann.png")
    assert await login_status(client, "carol", DEFAULT_PASSWORD) == 200
    assert await login_status(client, "ann", DEFAULT_PASSWORD) == 401
    taken = await client.post(
        USERS, json={"username": "CAROL", "email": "c@example.com", "password": DEFAULT_PASSWORD}
    )
    assert_problem(taken, 409, "username_taken")


async def test_update_me_rejects_a_username_taken_by_another_user_case_insensitively(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    user = await make_user(session, username="ann")
    await make_user(session, username="bob")

    response = await client.patch(
        ME, json={"username": "BOB", "bio": "x"}, headers=await auth_headers(client, user)
    )

    assert_problem(response, 409, "username_taken")
    stored = await stored_user(session, user.id)
    assert stored is not None
    assert (stored.username, stored.username_key, stored.bio) == ("ann", "ann", None)


async def test_update_me_allows_changing_the_case_of_ones_own_username(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    user = await make_user(session, username="ann")

    response = await client.patch(
        ME, json={"username": "ANN"}, headers=await auth_headers(client, user)
    )

    assert response.status_code == 200, response.text
    assert response.json()["username"] == "ANN"
    stored = await stored_user(session, user.id)
    assert stored is not None
    assert (stored.username, stored.username_key) == ("ANN", "ann")


async def test_update_me_rejects_an_email_taken_by_another_user_case_insensitively(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    user = await make_user(session, username="ann")
    await make_user(session, username="bob", email="bob@example.com")

    response = await client.patch(
        ME,
        json={"email": "BOB@Example.com", "current_password": DEFAULT_PASSWORD},
        headers=await auth_headers(client, user),
    )

    assert_problem(response, 409, "email_taken")
    stored = await stored_user(session, user.id)
    assert stored is not None
    assert stored.email == "ann@example.com"


async def test_update_me_changes_the_email_lowercased_and_resets_its_verification(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    user = await make_user(session, username="ann")
    user.email_verified = True
    await session.commit()

    response = await client.patch(
        ME,
        json={"email": "Ann.New@Example.COM", "current_password": DEFAULT_PASSWORD},
        headers=await auth_headers(client, user),
    )

    assert response.status_code == 200, response.text
    assert response.json()["email"] == "ann.new@example.com"
    assert response.json()["email_verified"] is False
    stored = await stored_user(session, user.id)
    assert stored is not None
    assert (stored.email, stored.email_verified) == ("ann.new@example.com", False)


@pytest.mark.parametrize(
    "changes",
    [{"email": "new@example.com"}, {"password": NEW_PASSWORD}],
    ids=["email", "password"],
)
async def test_update_me_without_current_password_is_rejected(
    client: httpx.AsyncClient, session: AsyncSession, changes: dict[str, str]
) -> None:
    user = await make_user(session, username="ann")

    response = await client.patch(ME, json=changes, headers=await auth_headers(client, user))

    assert_problem(response, 422, "validation_failed")
    assert NEW_PASSWORD not in response.text
    stored = await stored_user(session, user.id)
    assert stored is not None
    assert stored.email == "ann@example.com"
    assert await login_status(client, "ann", DEFAULT_PASSWORD) == 200


@pytest.mark.parametrize(
    "changes",
    [{"email": "new@example.com"}, {"password": NEW_PASSWORD}],
    ids=["email", "password"],
)
async def test_update_me_with_a_wrong_current_password_is_forbidden(
    client: httpx.AsyncClient, session: AsyncSession, changes: dict[str, str]
) -> None:
    user = await make_user(session, username="ann")
    wrong = "not the password at all"

    response = await client.patch(
        ME, json={**changes, "current_password": wrong}, headers=await auth_headers(client, user)
    )

    assert_problem(response, 403, "wrong_current_password")
    assert wrong not in response.text
    assert NEW_PASSWORD not in response.text
    stored = await stored_user(session, user.id)
    assert stored is not None
    assert stored.email == "ann@example.com"
    assert await login_status(client, "ann", DEFAULT_PASSWORD) == 200
    assert await login_status(client, "ann", NEW_PASSWORD) == 401


async def test_update_me_changes_the_password_and_ends_only_the_other_logins(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    user = await make_user(session, username="ann")
    this_login = bearer((await login(client, "ann"))["access_token"])
    other_login = bearer((await login(client, "ann"))["access_token"])

    response = await client.patch(
        ME,
        json={"password": NEW_PASSWORD, "current_password": DEFAULT_PASSWORD},
        headers=this_login,
    )

    assert response.status_code == 200, response.text
    assert response.json()["id"] == user.id
    assert NEW_PASSWORD not in response.text
    assert await login_status(client, "ann", NEW_PASSWORD) == 200
    assert await login_status(client, "ann", DEFAULT_PASSWORD) == 401
    assert (await client.get(ME, headers=this_login)).status_code == 200
    assert_problem(await client.get(ME, headers=other_login), 401, "invalid_token")


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        pytest.param({"username": None}, "username", id="username-null"),
        pytest.param(
            {"email": None, "current_password": DEFAULT_PASSWORD}, "email", id="email-null"
        ),
        pytest.param(
            {"password": None, "current_password": DEFAULT_PASSWORD}, "password", id="password-null"
        ),
        pytest.param(
            {"email": "new@example.com", "current_password": None},
            "current_password",
            id="current_password-null",
        ),
        pytest.param({"username": "ab"}, "username", id="username-too-short"),
        pytest.param({"username": "bad name"}, "username", id="username-space"),
        pytest.param({"email": "a@b", "current_password": DEFAULT_PASSWORD}, "email", id="email"),
        pytest.param(
            {"password": SEVEN_CHAR_PASSWORD, "current_password": DEFAULT_PASSWORD},
            "password",
            id="password-7-chars",
        ),
        pytest.param({"bio": "b" * 2001}, "bio", id="bio-too-long"),
        pytest.param({"bio": "a\x00b"}, "bio", id="bio-nul"),
        pytest.param({"image": "http://x/\x00"}, "image", id="image-nul"),
        pytest.param({"is_superuser": True}, "is_superuser", id="unknown-is_superuser"),
        pytest.param({"is_active": False}, "is_active", id="unknown-is_active"),
        pytest.param({"email_verified": True}, "email_verified", id="unknown-email_verified"),
        pytest.param(
            {"bio": "Changed", "is_superuser": True}, "is_superuser", id="valid-plus-unknown"
        ),
    ],
)
async def test_update_me_rejects_invalid_null_or_unknown_fields_and_changes_nothing(
    client: httpx.AsyncClient, session: AsyncSession, changes: dict[str, Any], field: str
) -> None:
    user = await make_user(session, username="ann", bio="Original")

    response = await client.patch(ME, json=changes, headers=await auth_headers(client, user))

    body = assert_problem(response, 422, "validation_failed")
    assert field in error_fields(body)
    assert DEFAULT_PASSWORD not in response.text
    assert SEVEN_CHAR_PASSWORD not in response.text
    stored = await stored_user(session, user.id)
    assert stored is not None
    assert (stored.username, stored.email, stored.bio) == ("ann", "ann@example.com", "Original")
    assert (stored.is_superuser, stored.is_active, stored.email_verified) == (False, True, False)
    assert await login_status(client, "ann", DEFAULT_PASSWORD) == 200


async def test_update_me_with_null_clears_bio_and_image(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    user = await make_user(session, username="ann", bio="Original")
    user.image = "https://example.com/ann.png"
    await session.commit()

    response = await client.patch(
        ME, json={"bio": None, "image": None}, headers=await auth_headers(client, user)
    )

    assert response.status_code == 200, response.text
    assert (response.json()["bio"], response.json()["image"]) == (None, None)
    stored = await stored_user(session, user.id)
    assert stored is not None
    assert (stored.bio, stored.image, stored.username) == (None, None, "ann")


async def test_delete_me_removes_the_account_and_its_posts_and_ends_its_tokens(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    user = await make_user(session, username="ann")
    other = await make_user(session, username="bob")
    await make_post(session, user)
    await make_post(session, user)
    await make_post(session, other)
    tokens = await login(client, "ann")
    headers = bearer(tokens["access_token"])

    response = await client.delete(ME, headers=headers)

    assert response.status_code == 204
    assert response.content == b""
    assert await stored_user(session, user.id) is None
    assert await count_posts_by(session, user.id) == 0
    assert await count_posts_by(session, other.id) == 1
    assert_problem(await client.get(ME, headers=headers), 401, "invalid_token")
    refresh = await client.post(
        "/api/v1/auth/refresh", json={"refresh_token": tokens["refresh_token"]}
    )
    assert refresh.status_code == 401
    assert await login_status(client, "ann", DEFAULT_PASSWORD) == 401
    assert_problem(await client.get(f"{USERS}{user.id}"), 404, "user_not_found")


@pytest.mark.parametrize("by_admin", [False, True], ids=["own-account", "administrator"])
async def test_deleting_an_account_tells_listeners_which_posts_went_with_it(
    app: FastAPI, client: httpx.AsyncClient, session: AsyncSession, by_admin: bool
) -> None:
    user = await make_user(session, username="ann")
    admin = await make_user(session, username="root", is_superuser=True)
    posts = [await make_post(session, user), await make_post(session, user)]
    await make_post(session, admin)
    heard: list[UserDeleted] = []
    app.state.database.events.subscribe(UserDeleted, heard.append)

    if by_admin:
        response = await client.delete(
            f"{USERS}{user.id}", headers=await auth_headers(client, admin)
        )
    else:
        response = await client.delete(ME, headers=await auth_headers(client, user))

    assert response.status_code == 204, response.text
    assert heard == [
        UserDeleted(
            user_id=user.id,
            post_ids=tuple(post.id for post in posts),
            post_slugs=tuple(post.slug for post in posts),
            username="ann",
        )
    ]


async def test_a_rename_tells_listeners_the_old_and_the_new_username_keys(
    app: FastAPI, client: httpx.AsyncClient, session: AsyncSession
) -> None:
    user = await make_user(session, username="ann")
    heard: list[UserChanged] = []
    app.state.database.events.subscribe(UserChanged, heard.append)
    headers = await auth_headers(client, user)

    await client.patch(ME, json={"username": "Anna"}, headers=headers)
    await client.patch(ME, json={"bio": "Hi."}, headers=headers)

    assert heard == [
        UserChanged(user_id=user.id, usernames=("ann", "anna")),
        UserChanged(user_id=user.id, usernames=("anna",)),
    ]


# GET /users/{id} and /users/{id}/posts --------------------------------------------------------


async def test_get_user_returns_the_public_profile_without_the_email(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    user = await make_user(session, username="ann", bio="Writer.")

    response = await client.get(f"{USERS}{user.id}")

    assert response.status_code == 200
    body = response.json()
    assert set(body) == PUBLIC_PROFILE_KEYS
    assert (body["id"], body["username"], body["bio"], body["image"]) == (
        user.id,
        "ann",
        "Writer.",
        None,
    )
    assert "ann@example.com" not in response.text


@pytest.mark.parametrize("suffix", ["", "/posts"], ids=["profile", "posts"])
async def test_get_user_answers_404_for_a_missing_user(
    client: httpx.AsyncClient, session: AsyncSession, suffix: str
) -> None:
    await make_user(session, username="ann")

    for user_id in (MISSING_ID, 2**31 - 1):
        response = await client.get(f"{USERS}{user_id}{suffix}")
        assert_problem(response, 404, "user_not_found")


@pytest.mark.parametrize("user_id", ["0", "-1", "abc", "1.5", str(2**31)])
@pytest.mark.parametrize("suffix", ["", "/posts"], ids=["profile", "posts"])
async def test_get_user_rejects_an_invalid_id(
    client: httpx.AsyncClient, user_id: str, suffix: str
) -> None:
    response = await client.get(f"{USERS}{user_id}{suffix}")

    body = assert_problem(response, 422, "validation_failed")
    assert body["errors"][0]["loc"] == ["path", "user_id"]


async def test_list_user_posts_returns_only_that_users_posts_newest_first(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    ann = await make_user(session, username="ann")
    bob = await make_user(session, username="bob")
    carol = await make_user(session, username="carol")
    first = await make_post(session, ann)
    await make_post(session, bob)
    second = await make_post(session, ann)
    third = await make_post(session, ann)

    response = await client.get(f"{USERS}{ann.id}/posts")

    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"items", "total", "limit", "offset"}
    assert [item["id"] for item in body["items"]] == [third.id, second.id, first.id]
    assert (body["total"], body["limit"], body["offset"]) == (3, 20, 0)
    assert {item["author"]["id"] for item in body["items"]} == {ann.id}
    assert body["items"][0]["author"] == {
        "id": ann.id,
        "username": "ann",
        "bio": None,
        "image": None,
        "following": False,
    }

    page = await client.get(f"{USERS}{ann.id}/posts", params={"limit": 2, "offset": 1})

    assert page.status_code == 200
    assert [item["id"] for item in page.json()["items"]] == [second.id, first.id]
    assert (page.json()["total"], page.json()["limit"], page.json()["offset"]) == (3, 2, 1)

    empty = await client.get(f"{USERS}{carol.id}/posts")

    assert empty.status_code == 200
    assert empty.json() == {"items": [], "total": 0, "limit": 20, "offset": 0}


@pytest.mark.parametrize(
    "params",
    [{"limit": 0}, {"limit": 101}, {"limit": "many"}, {"offset": -1}, {"offset": 2**31}],
    ids=["limit-0", "limit-101", "limit-text", "offset-negative", "offset-huge"],
)
async def test_list_user_posts_rejects_out_of_range_paging(
    client: httpx.AsyncClient, session: AsyncSession, params: dict[str, Any]
) -> None:
    user = await make_user(session, username="ann")

    response = await client.get(f"{USERS}{user.id}/posts", params=params)

    body = assert_problem(response, 422, "validation_failed")
    assert body["errors"][0]["loc"] == ["query", next(iter(params))]


# Superuser endpoints: GET /users/, PATCH and DELETE /users/{id} -------------------------------

ADMIN_REQUESTS = [
    pytest.param("GET", "", None, id="list"),
    pytest.param("PATCH", "{id}", {"is_active": False}, id="administer"),
    pytest.param("DELETE", "{id}", None, id="delete"),
]


@pytest.mark.parametrize(("method", "path", "json"), ADMIN_REQUESTS)
async def test_admin_endpoints_require_a_token(
    client: httpx.AsyncClient,
    session: AsyncSession,
    method: str,
    path: str,
    json: dict[str, Any] | None,
) -> None:
    target = await make_user(session, username="ann")

    response = await client.request(method, USERS + path.format(id=target.id), json=json)

    assert_problem(response, 401, "not_authenticated")
    stored = await stored_user(session, target.id)
    assert stored is not None
    assert stored.is_active is True


@pytest.mark.parametrize(("method", "path", "json"), ADMIN_REQUESTS)
async def test_admin_endpoints_forbid_a_normal_user(
    client: httpx.AsyncClient,
    session: AsyncSession,
    method: str,
    path: str,
    json: dict[str, Any] | None,
) -> None:
    caller = await make_user(session, username="bob")
    target = await make_user(session, username="ann")

    response = await client.request(
        method,
        USERS + path.format(id=target.id),
        json=json,
        headers=await auth_headers(client, caller),
    )

    assert_problem(response, 403, "permission_denied")
    stored = await stored_user(session, target.id)
    assert stored is not None
    assert stored.is_active is True
    assert await count_users(session) == 2


async def test_list_users_as_a_superuser_is_paginated_and_shows_is_active(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    admin = await make_user(session, username="root", is_superuser=True)
    ann = await make_user(session, username="ann")
    bob = await make_user(session, username="bob", is_active=False)
    headers = await auth_headers(client, admin)

    response = await client.get(USERS, headers=headers)

    assert response.status_code == 200
    body = response.json()
    assert (body["total"], body["limit"], body["offset"]) == (3, 20, 0)
    assert [item["id"] for item in body["items"]] == [admin.id, ann.id, bob.id]
    assert all(set(item) == ADMIN_USER_READ_KEYS for item in body["items"])
    assert [item["is_active"] for item in body["items"]] == [True, True, False]
    assert [item["is_superuser"] for item in body["items"]] == [True, False, False]
    assert body["items"][1]["email"] == "ann@example.com"

    page = await client.get(USERS, params={"limit": 1, "offset": 1}, headers=headers)

    assert page.status_code == 200
    assert [item["username"] for item in page.json()["items"]] == ["ann"]
    assert (page.json()["total"], page.json()["limit"], page.json()["offset"]) == (3, 1, 1)


@pytest.mark.parametrize(
    "params", [{"limit": 0}, {"limit": 101}, {"offset": -1}], ids=["limit-0", "limit-101", "offset"]
)
async def test_list_users_rejects_out_of_range_paging(
    client: httpx.AsyncClient, session: AsyncSession, params: dict[str, int]
) -> None:
    admin = await make_user(session, username="root", is_superuser=True)

    response = await client.get(USERS, params=params, headers=await auth_headers(client, admin))

    body = assert_problem(response, 422, "validation_failed")
    assert body["errors"][0]["loc"] == ["query", next(iter(params))]


async def test_superuser_deactivates_a_user_whose_tokens_and_login_then_fail(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    admin = await make_user(session, username="root", is_superuser=True)
    target = await make_user(session, username="ann")
    target_tokens = await login(client, "ann")
    target_headers = bearer(target_tokens["access_token"])
    assert (await client.get(ME, headers=target_headers)).status_code == 200

    response = await client.patch(
        f"{USERS}{target.id}", json={"is_active": False}, headers=await auth_headers(client, admin)
    )

    assert response.status_code == 200, response.text
    body = response.json()
    assert set(body) == ADMIN_USER_READ_KEYS
    assert (body["id"], body["is_active"], body["is_superuser"]) == (target.id, False, False)
    stored = await stored_user(session, target.id)
    assert stored is not None
    assert stored.is_active is False
    assert_problem(await client.get(ME, headers=target_headers), 401, "invalid_token")
    refresh = await client.post(
        "/api/v1/auth/refresh", json={"refresh_token": target_tokens["refresh_token"]}
    )
    assert refresh.status_code == 401
    assert await login_status(client, "ann", DEFAULT_PASSWORD) == 401


async def test_reactivating_a_user_lets_them_sign_in_again_without_reviving_old_tokens(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    admin = await make_user(session, username="root", is_superuser=True)
    target = await make_user(session, username="ann")
    old_headers = await auth_headers(client, target)
    admin_headers = await auth_headers(client, admin)
    deactivated = await client.patch(
        f"{USERS}{target.id}", json={"is_active": False}, headers=admin_headers
    )
    assert deactivated.status_code == 200, deactivated.text

    response = await client.patch(
        f"{USERS}{target.id}", json={"is_active": True}, headers=admin_headers
    )

    assert response.status_code == 200, response.text
    assert response.json()["is_active"] is True
    stored = await stored_user(session, target.id)
    assert stored is not None
    assert stored.is_active is True
    assert_problem(await client.get(ME, headers=old_headers), 401, "invalid_token")
    assert (await client.get(ME, headers=await auth_headers(client, target))).status_code == 200


async def test_superuser_promotes_a_user_who_can_then_administer(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    admin = await make_user(session, username="root", is_superuser=True)
    target = await make_user(session, username="ann")
    target_headers = await auth_headers(client, target)
    assert (await client.get(USERS, headers=target_headers)).status_code == 403

    response = await client.patch(
        f"{USERS}{target.id}",
        json={"is_superuser": True},
        headers=await auth_headers(client, admin),
    )

    assert response.status_code == 200, response.text
    assert (response.json()["is_superuser"], response.json()["is_active"]) == (True, True)
    stored = await stored_user(session, target.id)
    assert stored is not None
    assert stored.is_superuser is True
    assert (await client.get(USERS, headers=target_headers)).status_code == 200


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        pytest.param({"is_active": None}, "is_active", id="is_active-null"),
        pytest.param({"is_superuser": None}, "is_superuser", id="is_superuser-null"),
        pytest.param({"is_active": "maybe"}, "is_active", id="is_active-not-bool"),
        pytest.param({"email_verified": True}, "email_verified", id="unknown-email_verified"),
        pytest.param(
            {"is_superuser": True, "username": "boss"}, "username", id="valid-plus-unknown"
        ),
    ],
)
async def test_administer_user_rejects_invalid_null_or_unknown_fields_and_changes_nothing(
    client: httpx.AsyncClient, session: AsyncSession, changes: dict[str, Any], field: str
) -> None:
    admin = await make_user(session, username="root", is_superuser=True)
    target = await make_user(session, username="ann")

    response = await client.patch(
        f"{USERS}{target.id}", json=changes, headers=await auth_headers(client, admin)
    )

    body = assert_problem(response, 422, "validation_failed")
    assert field in error_fields(body)
    stored = await stored_user(session, target.id)
    assert stored is not None
    assert (stored.username, stored.is_active, stored.is_superuser) == ("ann", True, False)
    assert stored.email_verified is False


async def test_superuser_deletes_a_user_and_their_posts(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    admin = await make_user(session, username="root", is_superuser=True)
    target = await make_user(session, username="ann")
    await make_post(session, target)
    await make_post(session, admin)
    target_headers = await auth_headers(client, target)

    response = await client.delete(f"{USERS}{target.id}", headers=await auth_headers(client, admin))

    assert response.status_code == 204
    assert response.content == b""
    assert await stored_user(session, target.id) is None
    assert await count_posts_by(session, target.id) == 0
    assert await count_posts_by(session, admin.id) == 1
    assert_problem(await client.get(ME, headers=target_headers), 401, "invalid_token")
    assert_problem(await client.get(f"{USERS}{target.id}"), 404, "user_not_found")


@pytest.mark.parametrize(
    ("method", "json"), [("PATCH", {"is_active": False}), ("DELETE", None)], ids=["patch", "delete"]
)
async def test_admin_endpoints_answer_404_for_a_missing_user(
    client: httpx.AsyncClient, session: AsyncSession, method: str, json: dict[str, Any] | None
) -> None:
    admin = await make_user(session, username="root", is_superuser=True)

    response = await client.request(
        method, f"{USERS}{MISSING_ID}", json=json, headers=await auth_headers(client, admin)
    )

    assert_problem(response, 404, "user_not_found")
    assert await count_users(session) == 1


@pytest.mark.parametrize(
    ("method", "json"), [("PATCH", {"is_active": False}), ("DELETE", None)], ids=["patch", "delete"]
)
@pytest.mark.parametrize("user_id", ["0", "abc", str(2**31)])
async def test_admin_endpoints_reject_an_invalid_id(
    client: httpx.AsyncClient,
    session: AsyncSession,
    method: str,
    json: dict[str, Any] | None,
    user_id: str,
) -> None:
    admin = await make_user(session, username="root", is_superuser=True)

    response = await client.request(
        method, f"{USERS}{user_id}", json=json, headers=await auth_headers(client, admin)
    )

    body = assert_problem(response, 422, "validation_failed")
    assert ["path", "user_id"] in [error["loc"] for error in body["errors"]]
    assert await count_users(session) == 1


# Deactivated accounts ---------------------------------------------------------------------


async def test_a_deactivated_users_profile_and_posts_are_hidden_from_everyone_but_admins(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    admin = await make_user(session, username="root", is_superuser=True)
    reader = await make_user(session, username="bob")
    spammer = await make_user(session, username="spam", is_active=False)
    post = await make_post(session, spammer)
    visible = await make_post(session, reader)
    admin_headers = await auth_headers(client, admin)

    for headers in ({}, await auth_headers(client, reader)):
        assert_problem(
            await client.get(f"{USERS}{spammer.id}", headers=headers), 404, "user_not_found"
        )
        assert_problem(
            await client.get(f"{USERS}{spammer.id}/posts", headers=headers), 404, "user_not_found"
        )
        assert_problem(
            await client.get(f"/api/v1/posts/{post.id}", headers=headers), 404, "post_not_found"
        )
        listed = (await client.get("/api/v1/posts/", headers=headers)).json()
        assert [item["id"] for item in listed["items"]] == [visible.id]
        assert listed["total"] == 1
        by_author = await client.get(
            "/api/v1/posts/", params={"author_id": spammer.id}, headers=headers
        )
        assert by_author.json()["total"] == 0

    assert (await client.get(f"{USERS}{spammer.id}", headers=admin_headers)).status_code == 200
    posts = await client.get(f"{USERS}{spammer.id}/posts", headers=admin_headers)
    assert [item["id"] for item in posts.json()["items"]] == [post.id]
    assert (await client.get(f"/api/v1/posts/{post.id}", headers=admin_headers)).status_code == 200
    everything = (await client.get("/api/v1/posts/", headers=admin_headers)).json()
    assert everything["total"] == 2


async def test_public_reads_refuse_a_bad_token_rather_than_serve_it_as_anonymous(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    user = await make_user(session, username="ann")
    for path in (f"{USERS}{user.id}", f"{USERS}{user.id}/posts", "/api/v1/posts/"):
        response = await client.get(path, headers=bearer("not-a-token"))

        assert_problem(response, 401, "invalid_token")
        assert response.headers["WWW-Authenticate"] == "Bearer"


# The last administrator -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path", "json"),
    [
        pytest.param("PATCH", "{id}", {"is_superuser": False}, id="demote"),
        pytest.param("PATCH", "{id}", {"is_active": False}, id="deactivate"),
        pytest.param("DELETE", "{id}", None, id="delete"),
        pytest.param("DELETE", "me", None, id="delete-me"),
    ],
)
async def test_the_last_administrator_cannot_remove_themselves(
    client: httpx.AsyncClient,
    session: AsyncSession,
    method: str,
    path: str,
    json: dict[str, Any] | None,
) -> None:
    admin = await make_user(session, username="root", is_superuser=True)
    await make_user(session, username="ann")
    headers = await auth_headers(client, admin)

    response = await client.request(
        method, USERS + path.format(id=admin.id), json=json, headers=headers
    )

    assert_problem(response, 409, "last_administrator")
    stored = await stored_user(session, admin.id)
    assert stored is not None
    assert (stored.is_superuser, stored.is_active) == (True, True)
    assert (await client.get(ME, headers=headers)).status_code == 200


async def test_an_inactive_administrator_does_not_count_as_another_one(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    root = await make_user(session, username="root", is_superuser=True)
    await make_user(session, username="dormant", is_superuser=True, is_active=False)
    headers = await auth_headers(client, root)

    response = await client.patch(
        f"{USERS}{root.id}", json={"is_superuser": False}, headers=headers
    )

    assert_problem(response, 409, "last_administrator")


async def test_an_administrator_may_step_down_while_another_remains(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    root = await make_user(session, username="root", is_superuser=True)
    other = await make_user(session, username="other", is_superuser=True, is_active=False)
    await make_user(session, username="admin2", is_superuser=True)
    headers = await auth_headers(client, root)

    demoted = await client.patch(f"{USERS}{root.id}", json={"is_superuser": False}, headers=headers)

    assert demoted.status_code == 200, demoted.text
    assert demoted.json()["is_superuser"] is False
    # An inactive administrator does not count: nobody could act as them.
    stored = await stored_user(session, other.id)
    assert stored is not None
    assert stored.is_superuser is True


@pytest.mark.parametrize("value", ["yes", 1, "true", 0, None])
async def test_administer_user_accepts_only_json_booleans(
    client: httpx.AsyncClient, session: AsyncSession, value: object
) -> None:
    admin = await make_user(session, username="root", is_superuser=True)
    target = await make_user(session, username="ann")

    response = await client.patch(
        f"{USERS}{target.id}", json={"is_active": value}, headers=await auth_headers(client, admin)
    )

    body = assert_problem(response, 422, "validation_failed")
    assert error_fields(body) == {"is_active"}
    stored = await stored_user(session, target.id)
    assert stored is not None
    assert stored.is_active is True


# Email addresses and password hashing ------------------------------------------------------


@pytest.mark.parametrize(
    "email", ["ann@host.test", "ann@example.invalid", "ann@mail.local", "o'brien+tag@example.org"]
)
async def test_register_accepts_any_syntactically_valid_address(
    client: httpx.AsyncClient, email: str
) -> None:
    response = await client.post(
        USERS, json={"username": "ann", "email": email, "password": DEFAULT_PASSWORD}
    )

    assert response.status_code == 201, response.text
    assert response.json()["email"] == email


async def test_register_hashes_the_password_with_no_transaction_open(
    app: FastAPI, client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    connections = connections_during_hashing(app, monkeypatch)

    response = await client.post(
        USERS, json={"username": "ann", "email": "ann@example.com", "password": DEFAULT_PASSWORD}
    )

    assert response.status_code == 201, response.text
    assert connections == [0]


@pytest.mark.parametrize(
    ("changes", "status", "hashes", "email"),
    [
        (
            {"password": NEW_PASSWORD, "current_password": DEFAULT_PASSWORD},
            200,
            2,
            "ann@example.com",
        ),
        (
            {"email": "ann.new@example.com", "current_password": DEFAULT_PASSWORD},
            200,
            1,
            "ann.new@example.com",
        ),
        (
            {"email": "ann.new@example.com", "current_password": "a wrong password"},
            403,
            1,
            "ann@example.com",
        ),
    ],
    ids=["password", "email", "wrong-current-password"],
)
async def test_update_me_verifies_and_hashes_passwords_with_no_transaction_open(
    app: FastAPI,
    client: httpx.AsyncClient,
    session: AsyncSession,
    monkeypatch: pytest.MonkeyPatch,
    changes: dict[str, str],
    status: int,
    hashes: int,
    email: str,
) -> None:
    user = await make_user(session, username="ann")
    headers = await auth_headers(client, user)
    connections = connections_during_hashing(app, monkeypatch)

    response = await client.patch(ME, json=changes, headers=headers)

    assert response.status_code == status, response.text
    assert connections == [0] * hashes
    stored = await stored_user(session, user.id)
    assert stored is not None
    assert stored.email == email
    new_password_works = await login_status(client, "ann", NEW_PASSWORD) == 200
    assert new_password_works is ("password" in changes)


@pytest.mark.usefixtures("postgresql_only")
async def test_changing_ones_account_while_it_is_deleted_is_a_401_not_a_crash(
    client: httpx.AsyncClient, session: AsyncSession, database_url: str
) -> None:
    user = await make_user(session, username="ann")
    headers = await auth_headers(client, user)

    response = await racing_an_uncommitted_change(
        database_url,
        delete(User).where(User.id == user.id),
        client.patch(ME, json={"bio": "Too late."}, headers=headers),
    )

    assert_problem(response, 401, "invalid_token")
    assert await count_users(session) == 0


@pytest.mark.usefixtures("postgresql_only")
async def test_administering_a_user_while_it_is_deleted_is_a_404_not_a_crash(
    client: httpx.AsyncClient, session: AsyncSession, database_url: str
) -> None:
    admin = await make_user(session, username="root", is_superuser=True)
    target = await make_user(session, username="ann")
    headers = await auth_headers(client, admin)

    response = await racing_an_uncommitted_change(
        database_url,
        delete(User).where(User.id == target.id),
        client.patch(f"{USERS}{target.id}", json={"is_active": False}, headers=headers),
    )

    assert_problem(response, 404, "user_not_found")
    assert await count_users(session) == 1


async def test_a_password_change_whose_account_is_deleted_while_hashing_fails_cleanly(
    app: FastAPI, client: httpx.AsyncClient, session: AsyncSession, monkeypatch: pytest.MonkeyPatch
) -> None:
    user = await make_user(session, username="ann")
    headers = await auth_headers(client, user)
    on_hashing(
        app,
        monkeypatch,
        committing_once(app.state.database, delete(User).where(User.id == user.id)),
    )

    response = await client.patch(
        ME, json={"password": NEW_PASSWORD, "current_password": DEFAULT_PASSWORD}, headers=headers
    )

    assert_problem(response, 401, "invalid_token")
    assert await count_users(session) == 0


async def test_an_email_change_checked_against_a_password_replaced_meanwhile_is_refused(
    app: FastAPI, client: httpx.AsyncClient, session: AsyncSession, monkeypatch: pytest.MonkeyPatch
) -> None:
    user = await make_user(session, username="ann")
    headers = await auth_headers(client, user)
    replaced = update(User).where(User.id == user.id).values(hashed_password="another-hash")
    on_hashing(app, monkeypatch, committing_once(app.state.database, replaced))

    response = await client.patch(
        ME, json={"email": "new@example.com", "current_password": DEFAULT_PASSWORD}, headers=headers
    )

    assert_problem(response, 403, "wrong_current_password")
    stored = await stored_user(session, user.id)
    assert stored is not None
    assert stored.email == "ann@example.com"
