"""Conduit's users: registration, sign-in and the current user under /api, over the same accounts
and logins as /api/v1, with Conduit's tokens (a login of their own, never refreshed)."""

from datetime import timedelta

import anyio
import httpx
import jwt
import pytest
from fastapi import FastAPI
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.config import Settings
from app.main import create_app
from app.models import Login, User
from tests.conduit.helpers import (
    CONDUIT_PASSWORD,
    assert_errors,
    assert_unauthorized,
    sign_in,
    sign_up,
    token,
    token_of,
)
from tests.conftest import Serve
from tests.factories import DEFAULT_PASSWORD, bearer, login, make_user
from tests.helpers import assert_problem, count_users, stored_user
from tests.mailbox import outbox_recipients

USERS = "/api/users"
LOGIN = "/api/users/login"
USER = "/api/user"


async def put_user(
    client: httpx.AsyncClient, access_token: str, **changes: object
) -> httpx.Response:
    return await client.put(USER, json={"user": changes}, headers=token(access_token))


# --- Registration ------------------------------------------------------------------------------


async def test_registration_answers_the_new_user_signed_in(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    response = await client.post(
        USERS,
        json={"user": {"username": "Jake", "email": "Jake@Example.com", "password": "jakejake"}},
    )

    assert response.status_code == 201, response.text
    assert response.headers["content-type"] == "application/json"
    assert response.headers["Cache-Control"] == "no-store"
    user = response.json()["user"]
    assert set(user) == {"email", "token", "username", "bio", "image"}
    assert (user["username"], user["email"], user["bio"], user["image"]) == (
        "Jake",
        "jake@example.com",
        None,
        None,
    )
    me = await client.get(USER, headers=token(user["token"]))
    assert me.status_code == 200, me.text
    assert me.json() == {"user": user}
    assert await outbox_recipients(app) == ["jake@example.com"]


async def test_blank_registration_fields_are_each_cant_be_blank(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    blank = await client.post(USERS, json={"user": {"username": "", "email": " ", "password": ""}})
    missing = await client.post(USERS, json={"user": {}})
    no_envelope = await client.post(USERS, json={"username": "jake"})

    assert_errors(
        blank,
        422,
        {
            "username": ["can't be blank"],
            "email": ["can't be blank"],
            "password": ["can't be blank"],
        },
    )
    assert_errors(
        missing,
        422,
        {
            "username": ["can't be blank"],
            "email": ["can't be blank"],
            "password": ["can't be blank"],
        },
    )
    assert_errors(no_envelope, 422, {"user": ["can't be blank"]})
    assert await count_users(session) == 0


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"email": "not-an-address"}, "email"),
        ({"password": "short7c"}, "password"),
        ({"username": "ja"}, "username"),
        ({"username": "jake smith"}, "username"),
        ({"username": 7}, "username"),
    ],
)
async def test_invalid_registrations_are_refused_and_make_nobody(
    client: httpx.AsyncClient, session: AsyncSession, changes: dict[str, object], field: str
) -> None:
    valid = {"username": "jake", "email": "jake@example.com", "password": CONDUIT_PASSWORD}

    response = await client.post(USERS, json={"user": {**valid, **changes}})

    assert list(assert_errors(response, 422)) == [field]
    assert await count_users(session) == 0


async def test_a_taken_username_or_email_is_has_already_been_taken(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    await sign_up(client, "jake")

    username = await client.post(
        USERS,
        json={"user": {"username": "JAKE", "email": "other@example.com", "password": "12345678"}},
    )
    email = await client.post(
        USERS,
        json={"user": {"username": "other", "email": "Jake@example.com", "password": "12345678"}},
    )

    assert_errors(username, 409, {"username": ["has already been taken"]})
    assert_errors(email, 409, {"email": ["has already been taken"]})
    assert await count_users(session) == 1


async def test_sign_ups_through_conduit_spend_the_sign_up_limit(
    settings: Settings, serve: Serve
) -> None:
    app = create_app(settings.model_copy(update={"RATE_LIMIT_REGISTER_ADDRESS": "2/hour"}))
    async with serve(app) as client:
        await sign_up(client, "ann")
        native = await client.post(
            "/api/v1/users/",
            json={"username": "bob", "email": "bob@example.com", "password": "a password"},
        )
        refused = await client.post(
            USERS,
            json={"user": {"username": "cyd", "email": "cyd@example.com", "password": "12345678"}},
        )

    assert native.status_code == 201
    assert_errors(refused, 429)
    assert refused.headers["Retry-After"]


# --- Signing in --------------------------------------------------------------------------------


async def test_a_sign_in_is_a_login_of_its_own_whose_token_lives_the_conduit_ttl(
    client: httpx.AsyncClient, session: AsyncSession, settings: Settings
) -> None:
    await make_user(session, username="ann", password=CONDUIT_PASSWORD)

    response = await sign_in(client, "Ann@Example.com")

    assert response.status_code == 200, response.text
    assert response.headers["Cache-Control"] == "no-store"
    user = response.json()["user"]
    assert (user["username"], user["email"]) == ("ann", "ann@example.com")
    claims = jwt.decode(user["token"], options={"verify_signature": False})
    assert claims["exp"] - claims["iat"] == settings.CONDUIT_TOKEN_TTL_SECONDS == 7 * 24 * 3600
    login_row = await session.scalar(select(Login).where(Login.id == claims["sid"]))
    await session.commit()
    assert login_row is not None
    assert login_row.expires_at - login_row.created_at == timedelta(days=7)
    for scheme in ("Token", "Bearer", "token"):
        me = await client.get(USER, headers={"Authorization": f"{scheme} {user['token']}"})
        assert me.status_code == 200, scheme


async def test_wrong_credentials_are_credentials_invalid(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    await make_user(session, username="ann", password=CONDUIT_PASSWORD)

    wrong_password = await sign_in(client, "ann@example.com", "wrongpassword")
    nobody = await sign_in(client, "nobody@example.com")
    blank = await client.post(LOGIN, json={"user": {"email": "", "password": ""}})

    for response in (wrong_password, nobody):
        assert_errors(response, 401, {"credentials": ["invalid"]})
        assert response.headers["WWW-Authenticate"] == "Token"
    assert_errors(blank, 422, {"email": ["can't be blank"], "password": ["can't be blank"]})


async def test_conduit_sign_ins_spend_the_sign_in_limits(
    settings: Settings, serve: Serve, session: AsyncSession
) -> None:
    await make_user(session, username="ann", password=CONDUIT_PASSWORD)
    app = create_app(
        settings.model_copy(
            update={"RATE_LIMIT_LOGIN_ADDRESS": "3/minute", "RATE_LIMIT_LOGIN_ACCOUNT": "1/minute"}
        )
    )
    async with serve(app) as client:
        failed = await sign_in(client, "ann@example.com", "wrongpassword")
        account_spent = await sign_in(client, "ann@example.com")
        native = await client.post(
            "/api/v1/auth/token", data={"username": "nobody", "password": "x"}
        )
        address_spent = await sign_in(client, "nobody@example.com")

    assert failed.status_code == 401
    assert_errors(account_spent, 429)
    assert native.status_code == 401
    assert_errors(address_spent, 429)
    assert address_spent.headers["RateLimit-Remaining"] == "0"


async def test_an_account_made_on_conduit_signs_in_on_api_v1_and_back(
    client: httpx.AsyncClient,
) -> None:
    await sign_up(client, "ann")

    native = await login(client, "ann", CONDUIT_PASSWORD)
    me = await client.get("/api/v1/users/me", headers=bearer(native["access_token"]))
    conduit_with_native_token = await client.get(USER, headers=bearer(native["access_token"]))

    assert me.json()["username"] == "ann"
    assert conduit_with_native_token.json()["user"]["username"] == "ann"
    assert (await sign_in(client, "ann@example.com")).status_code == 200


# --- The current user, and tokens that fail ----------------------------------------------------


async def test_without_a_token_the_token_is_missing(client: httpx.AsyncClient) -> None:
    get = await client.get(USER)
    put = await client.put(USER, json={"user": {"bio": "test"}})
    wrong_scheme = await client.get(USER, headers={"Authorization": "Basic abc"})

    for response in (get, put, wrong_scheme):
        assert_unauthorized(response, "is missing")


async def test_a_token_that_is_no_token_is_invalid(client: httpx.AsyncClient) -> None:
    response = await client.get(USER, headers=token("not-a-jwt"))

    assert_unauthorized(response)


async def test_an_expired_token_is_invalid(settings: Settings, serve: Serve) -> None:
    app = create_app(settings.model_copy(update={"CONDUIT_TOKEN_TTL_SECONDS": 1}))
    async with serve(app) as client:
        ann = await sign_up(client, "ann")
        await anyio.sleep(1.5)
        response = await client.get(USER, headers=token(ann["token"]))

    assert_unauthorized(response)


async def test_a_token_of_an_ended_login_is_invalid(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    ann = await sign_up(client, "ann")
    sid = jwt.decode(ann["token"], options={"verify_signature": False})["sid"]
    await session.execute(update(Login).where(Login.id == sid).values(expires_at=Login.created_at))
    await session.commit()

    response = await client.get(USER, headers=token(ann["token"]))

    assert_unauthorized(response)


async def test_a_conduit_token_outlives_a_logout_elsewhere_but_not_a_password_change(
    client: httpx.AsyncClient,
) -> None:
    await sign_up(client, "ann")
    conduit_token = await token_of(client, "ann@example.com")
    native = await login(client, "ann", CONDUIT_PASSWORD)

    logout = await client.post(
        "/api/v1/auth/logout", json={"refresh_token": native["refresh_token"]}
    )
    after_logout = await client.get(USER, headers=token(conduit_token))
    other = await login(client, "ann", CONDUIT_PASSWORD)
    changed = await client.patch(
        "/api/v1/users/me",
        json={"password": "a new passphrase", "current_password": CONDUIT_PASSWORD},
        headers=bearer(other["access_token"]),
    )
    after_change = await client.get(USER, headers=token(conduit_token))

    assert logout.status_code == 204
    assert after_logout.status_code == 200
    assert changed.status_code == 200, changed.text
    assert_unauthorized(after_change)


async def test_deactivation_ends_conduit_tokens(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    ann = await sign_up(client, "ann")
    admin = await make_user(session, username="root", is_superuser=True)
    headers = bearer((await login(client, admin.username, DEFAULT_PASSWORD))["access_token"])
    ann_id = await session.scalar(select(User.id).where(User.username == "ann"))
    await session.commit()

    deactivated = await client.patch(
        f"/api/v1/users/{ann_id}", json={"is_active": False}, headers=headers
    )
    response = await client.get(USER, headers=token(ann["token"]))

    assert deactivated.status_code == 200, deactivated.text
    assert_unauthorized(response)


# --- Changing the current user -----------------------------------------------------------------


async def test_bio_and_image_are_set_and_cleared_by_null_or_empty_text(
    client: httpx.AsyncClient,
) -> None:
    ann = await sign_up(client, "ann")

    set_both = await put_user(client, ann["token"], bio="I write.", image="https://x.test/a.jpg")
    cleared_by_empty = await put_user(client, ann["token"], bio="", image="")
    await put_user(client, ann["token"], bio="Again.", image="https://x.test/b.jpg")
    cleared_by_null = await put_user(client, ann["token"], bio=None, image=None)
    untouched = await put_user(client, ann["token"], token="what a frontend sends back")

    assert set_both.json()["user"] | {"token": None} == {
        "email": "ann@example.com",
        "token": None,
        "username": "ann",
        "bio": "I write.",
        "image": "https://x.test/a.jpg",
    }
    for response in (cleared_by_empty, cleared_by_null, untouched):
        assert response.status_code == 200, response.text
        assert (response.json()["user"]["bio"], response.json()["user"]["image"]) == (None, None)
        assert response.json()["user"]["token"] == ann["token"]
    me = await client.get(USER, headers=token(ann["token"]))
    assert (me.json()["user"]["bio"], me.json()["user"]["image"]) == (None, None)


@pytest.mark.parametrize(
    "changes",
    [
        {"email": ""},
        {"email": None},
        {"email": "nope"},
        {"username": ""},
        {"username": None},
        {"password": ""},
        {"password": None},
        {"password": "short7c"},
        {"bio": 7},
        {"bio": "x" * 2001},
    ],
)
async def test_invalid_changes_are_refused_and_change_nothing(
    app: FastAPI, client: httpx.AsyncClient, session: AsyncSession, changes: dict[str, object]
) -> None:
    ann = await sign_up(client, "ann")

    response = await client.put(USER, json={"user": changes}, headers=token(ann["token"]))

    assert list(assert_errors(response, 422)) == list(changes)
    me = await client.get(USER, headers=token(ann["token"]))
    assert me.json()["user"] == ann
    assert await token_of(client, "ann@example.com") != ann["token"]


async def test_a_taken_username_is_refused(client: httpx.AsyncClient) -> None:
    await sign_up(client, "bob")
    ann = await sign_up(client, "ann")

    response = await put_user(client, ann["token"], username="Bob", bio="changed")

    assert_errors(response, 409, {"username": ["has already been taken"]})
    me = await client.get(USER, headers=token(ann["token"]))
    assert (me.json()["user"]["username"], me.json()["user"]["bio"]) == ("ann", None)


async def test_a_new_password_needs_no_current_one_and_ends_every_other_login(
    client: httpx.AsyncClient,
) -> None:
    ann = await sign_up(client, "ann")
    other_conduit = await token_of(client, "ann@example.com")
    native = await login(client, "ann", CONDUIT_PASSWORD)

    changed = await put_user(client, ann["token"], password="bonjour1")

    assert changed.status_code == 200, changed.text
    assert changed.json()["user"]["token"] == ann["token"]
    assert (await client.get(USER, headers=token(ann["token"]))).status_code == 200
    assert_unauthorized(await client.get(USER, headers=token(other_conduit)))
    native_me = await client.get("/api/v1/users/me", headers=bearer(native["access_token"]))
    assert_problem(native_me, 401, "invalid_token")
    assert (await sign_in(client, "ann@example.com")).status_code == 401
    assert (await sign_in(client, "ann@example.com", "bonjour1")).status_code == 200


async def test_a_new_email_is_in_force_unverified_mailed_and_ends_every_other_login(
    app: FastAPI, client: httpx.AsyncClient, session: AsyncSession
) -> None:
    ann = await sign_up(client, "ann")
    other_conduit = await token_of(client, "ann@example.com")

    changed = await put_user(client, ann["token"], username="ann_new", email="Ann.New@Example.com")

    assert changed.status_code == 200, changed.text
    assert changed.json()["user"] | {"token": ann["token"]} == {
        "email": "ann.new@example.com",
        "token": ann["token"],
        "username": "ann_new",
        "bio": None,
        "image": None,
    }
    me = await client.get(USER, headers=token(ann["token"]))
    assert me.json()["user"]["email"] == "ann.new@example.com"
    assert_unauthorized(await client.get(USER, headers=token(other_conduit)))
    # The welcome, then the new address's verification and the old one's notice.
    assert await outbox_recipients(app) == [
        "ann@example.com",
        "ann.new@example.com",
        "ann@example.com",
    ]
    user_id = await session.scalar(select(User.id).where(User.username == "ann_new"))
    await session.commit()
    assert user_id is not None
    assert (await stored_user(session, user_id)).email_verified is False
    assert (await sign_in(client, "ann.new@example.com")).status_code == 200


async def test_changes_that_leave_the_address_as_it_is_end_no_login_and_send_nothing(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    ann = await sign_up(client, "ann")
    other_conduit = await token_of(client, "ann@example.com")

    changed = await put_user(client, ann["token"], email="ann@example.com", bio="Hello.")

    assert changed.status_code == 200, changed.text
    assert (await client.get(USER, headers=token(other_conduit))).status_code == 200
    assert await outbox_recipients(app) == ["ann@example.com"]
