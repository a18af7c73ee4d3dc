"""Attacks on who may do what (OWASP API1:2023 Broken Object Level Authorization, API3:2023
Broken Object Property Level Authorization, API5:2023 Broken Function Level Authorization; ASVS
V8): another user's things, the administrators' routes, and fields no client may set. Each is
refused, and the database is as it was, row for row.

Already covered, and not repeated here: tests/posts/test_router.py::test_author_cannot_edit_
another_authors_post and ::test_author_cannot_delete_another_authors_post (403, the post as it
was); tests/users/test_router.py::test_admin_endpoints_forbid_a_normal_user (extended below to
every route that requires an administrator, found in the app, and to every row),
::test_update_me_rejects_invalid_null_or_unknown_fields_and_changes_nothing and ::test_register_
rejects_invalid_input_without_echoing_it_or_creating_a_user (a few unknown fields; extended below
to every write body and every field a client must not set), ::test_a_deactivated_users_profile_
and_posts_are_hidden_from_everyone_but_admins. Comments do not exist yet on /api/v1.
"""

from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from fastapi.dependencies.models import Dependant
from sqlalchemy.ext.asyncio import AsyncSession

from app.auth import account_tokens
from app.auth.dependencies import get_superuser
from app.core.paths import API_V1_PREFIX
from app.models import AccountTokenPurpose, Post, User
from tests.factories import DEFAULT_PASSWORD, bearer, login, make_post, make_user
from tests.helpers import api_routes, assert_problem, open_session, snapshot


@dataclass
class World:
    """Ann, a normal user with a post; Bob, another normal user with a post; Root, an admin."""

    app: FastAPI
    ann: User
    bob: User
    root: User
    anns_post: Post
    bobs_post: Post
    ann_tokens: dict[str, Any]
    root_tokens: dict[str, Any]

    @property
    def as_ann(self) -> dict[str, str]:
        return bearer(self.ann_tokens["access_token"])

    @property
    def as_root(self) -> dict[str, str]:
        return bearer(self.root_tokens["access_token"])

    async def link_token(self, purpose: AccountTokenPurpose) -> str:
        async with open_session(self.app.state.database) as session:
            token = await account_tokens.issue(
                session, self.ann, purpose, email=self.ann.email, ttl=timedelta(hours=1)
            )
            await session.commit()
        return token


@pytest.fixture
async def world(app: FastAPI, client: httpx.AsyncClient, session: AsyncSession) -> World:
    ann = await make_user(session, username="ann", bio="ann's bio")
    bob = await make_user(session, username="bob", bio="bob's bio")
    root = await make_user(session, username="root", is_superuser=True)
    return World(
        app=app,
        ann=ann,
        bob=bob,
        root=root,
        anns_post=await make_post(session, ann, title="Ann's", content="By ann."),
        bobs_post=await make_post(session, bob, title="Bob's", content="By bob."),
        ann_tokens=await login(client, "ann"),
        root_tokens=await login(client, "root"),
    )


# --- Function level: the administrators' routes ------------------------------------------------


def dependencies_of(dependant: Dependant) -> Iterator[Dependant]:
    for dependency in dependant.dependencies:
        yield dependency
        yield from dependencies_of(dependency)


def administrators_routes(app: FastAPI) -> set[tuple[str, str]]:
    """(method, path) of every route that requires an administrator, as the app declares it."""
    return {
        (method, path)
        for method, path, route in api_routes(app)
        if any(dep.call is get_superuser for dep in dependencies_of(route.dependant))
    }


# A request each administrator's route would carry out for an administrator.
ADMINISTRATORS_REQUESTS: dict[tuple[str, str], Callable[[World], tuple[str, Any]]] = {
    ("GET", "/api/v1/users/"): lambda w: ("/api/v1/users/", None),
    ("PATCH", "/api/v1/users/{user_id}"): lambda w: (
        f"/api/v1/users/{w.bob.id}",
        {"is_active": False, "is_superuser": True},
    ),
    ("DELETE", "/api/v1/users/{user_id}"): lambda w: (f"/api/v1/users/{w.bob.id}", None),
}


def test_every_administrators_route_is_attacked_here(app: FastAPI) -> None:
    assert administrators_routes(app) == set(ADMINISTRATORS_REQUESTS)


@pytest.mark.parametrize(("method", "route"), sorted(ADMINISTRATORS_REQUESTS))
async def test_an_administrators_route_refuses_a_normal_user_and_changes_nothing(
    client: httpx.AsyncClient, world: World, method: str, route: str
) -> None:
    path, body = ADMINISTRATORS_REQUESTS[method, route](world)
    before = await snapshot(world.app.state.database)

    refused = await client.request(method, path, json=body, headers=world.as_ann)

    assert_problem(refused, 403, "permission_denied")
    assert await snapshot(world.app.state.database) == before
    # The control: the same request is carried out for an administrator.
    done = await client.request(method, path, json=body, headers=world.as_root)
    assert done.status_code in {200, 204}, done.text


@pytest.mark.parametrize(
    "changes", [{"is_superuser": True}, {"is_active": True}, {"is_active": False}]
)
async def test_a_normal_user_cannot_administer_their_own_account(
    client: httpx.AsyncClient, world: World, changes: dict[str, bool]
) -> None:
    before = await snapshot(world.app.state.database)

    response = await client.patch(
        f"/api/v1/users/{world.ann.id}", json=changes, headers=world.as_ann
    )

    assert_problem(response, 403, "permission_denied")
    assert await snapshot(world.app.state.database) == before


# --- Object level: another user's things -------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "body"),
    [("PATCH", {"title": "Hijacked"}), ("PATCH", {"content": "Hijacked"}), ("DELETE", None)],
)
async def test_another_users_post_cannot_be_changed_or_deleted(
    client: httpx.AsyncClient, world: World, method: str, body: dict[str, str] | None
) -> None:
    before = await snapshot(world.app.state.database)

    response = await client.request(
        method, f"/api/v1/posts/{world.bobs_post.id}", json=body, headers=world.as_ann
    )

    assert_problem(response, 403, "not_post_author")
    assert await snapshot(world.app.state.database) == before


async def test_own_account_routes_never_reach_another_account(
    client: httpx.AsyncClient, world: World
) -> None:
    """/users/me is the caller's, whatever else the request names: another id in the query, in
    the body, or as the path of the administrators' route."""
    before = await snapshot(world.app.state.database)

    by_query = await client.patch(
        "/api/v1/users/me",
        params={"user_id": world.bob.id},
        json={"bio": "ann's new bio"},
        headers=world.as_ann,
    )
    by_body = await client.patch(
        "/api/v1/users/me", json={"id": world.bob.id, "bio": "hijacked"}, headers=world.as_ann
    )
    by_path = await client.patch(
        f"/api/v1/users/{world.bob.id}", json={"is_active": False}, headers=world.as_ann
    )

    assert by_query.status_code == 200, by_query.text
    assert by_query.json()["id"] == world.ann.id
    assert_problem(by_body, 422, "validation_failed")
    assert_problem(by_path, 403, "permission_denied")
    after = await snapshot(world.app.state.database)
    changed = [row for row in after["users"] if row not in before["users"]]
    assert [(row[0], "ann's new bio" in row) for row in changed] == [(world.ann.id, True)]
    assert after["posts"] == before["posts"]


# --- Property level: fields no client may set --------------------------------------------------

# What no write body may carry: who someone is, what they may do, and what the server records.
SERVER_OWNED = {
    "id": 999,
    "is_superuser": True,
    "is_active": False,
    "email_verified": True,
    "author_id": 2,
    "author": {"id": 2},
    "user_id": 2,
    "post_id": 2,
    "slug": "taken-over",
    "favorites_count": 1000,
    "favorited": True,
    "created_at": "2000-01-01T00:00:00Z",
    "updated_at": "2000-01-01T00:00:00Z",
    "hashed_password": "$argon2id$v=19$m=8,t=1,p=1$AAAA$AAAA",
    "username_key": "root",
}


@dataclass(frozen=True)
class Write:
    """A write that succeeds as it is: (method, path, body, headers, form?) for the world."""

    method: str
    make: Callable[[World], Awaitable[tuple[str, dict[str, Any], dict[str, str]]]]
    form: bool = False
    # Fields this route does take (an administrator may set is_active and is_superuser).
    takes: frozenset[str] = frozenset()


async def _register(w: World) -> tuple[str, dict[str, Any], dict[str, str]]:
    body = {"username": "eve", "email": "eve@example.com", "password": "a long passphrase"}
    return "/api/v1/users/", body, {}


async def _update_me(w: World) -> tuple[str, dict[str, Any], dict[str, str]]:
    return "/api/v1/users/me", {"bio": "new bio"}, w.as_ann


async def _administer(w: World) -> tuple[str, dict[str, Any], dict[str, str]]:
    return f"/api/v1/users/{w.bob.id}", {"is_superuser": True}, w.as_root


async def _create_post(w: World) -> tuple[str, dict[str, Any], dict[str, str]]:
    return "/api/v1/posts/", {"title": "New", "content": "A new post."}, w.as_ann


async def _update_post(w: World) -> tuple[str, dict[str, Any], dict[str, str]]:
    return f"/api/v1/posts/{w.anns_post.id}", {"title": "Renamed"}, w.as_ann


async def _add_comment(w: World) -> tuple[str, dict[str, Any], dict[str, str]]:
    return f"/api/v1/posts/{w.bobs_post.id}/comments", {"body": "Nice."}, w.as_ann


async def _sign_in(w: World) -> tuple[str, dict[str, Any], dict[str, str]]:
    return "/api/v1/auth/token", {"username": "ann", "password": DEFAULT_PASSWORD}, {}


async def _refresh(w: World) -> tuple[str, dict[str, Any], dict[str, str]]:
    return "/api/v1/auth/refresh", {"refresh_token": w.ann_tokens["refresh_token"]}, {}


async def _logout(w: World) -> tuple[str, dict[str, Any], dict[str, str]]:
    return "/api/v1/auth/logout", {"refresh_token": w.ann_tokens["refresh_token"]}, {}


async def _confirm_email(w: World) -> tuple[str, dict[str, Any], dict[str, str]]:
    token = await w.link_token(AccountTokenPurpose.VERIFY_EMAIL)
    return "/api/v1/auth/verify-email/confirm", {"token": token}, {}


async def _request_reset(w: World) -> tuple[str, dict[str, Any], dict[str, str]]:
    return "/api/v1/auth/password-reset/request", {"email": "ann@example.com"}, {}


async def _reset(w: World) -> tuple[str, dict[str, Any], dict[str, str]]:
    token = await w.link_token(AccountTokenPurpose.RESET_PASSWORD)
    body = {"token": token, "new_password": "a brand new passphrase"}
    return "/api/v1/auth/password-reset/confirm", body, {}


WRITES: dict[tuple[str, str], Write] = {
    ("POST", "/api/v1/users/"): Write("POST", _register),
    ("PATCH", "/api/v1/users/me"): Write("PATCH", _update_me),
    ("PATCH", "/api/v1/users/{user_id}"): Write(
        "PATCH", _administer, takes=frozenset({"is_superuser", "is_active"})
    ),
    ("POST", "/api/v1/posts/"): Write("POST", _create_post),
    ("PATCH", "/api/v1/posts/{post_id}"): Write("PATCH", _update_post),
    ("POST", "/api/v1/posts/{post_id}/comments"): Write("POST", _add_comment),
    ("POST", "/api/v1/auth/token"): Write("POST", _sign_in, form=True),
    ("POST", "/api/v1/auth/refresh"): Write("POST", _refresh),
    ("POST", "/api/v1/auth/logout"): Write("POST", _logout),
    ("POST", "/api/v1/auth/verify-email/confirm"): Write("POST", _confirm_email),
    ("POST", "/api/v1/auth/password-reset/request"): Write("POST", _request_reset),
    ("POST", "/api/v1/auth/password-reset/confirm"): Write("POST", _reset),
}


def test_every_route_with_a_body_is_attacked_here(app: FastAPI) -> None:
    with_a_body = {
        (method, path)
        for method, path, route in api_routes(app)
        if path.startswith(API_V1_PREFIX) and route.body_field is not None
    }

    assert with_a_body == set(WRITES)


@pytest.mark.parametrize("route", sorted(WRITES), ids=" ".join)
async def test_a_field_no_client_may_set_is_refused_and_changes_nothing(
    client: httpx.AsyncClient, world: World, route: tuple[str, str]
) -> None:
    write = WRITES[route]
    path, body, headers = await write.make(world)
    before = await snapshot(world.app.state.database)

    async def send(content: dict[str, Any]) -> httpx.Response:
        if write.form:
            form = {name: str(value) for name, value in content.items()}
            return await client.request(write.method, path, data=form, headers=headers)
        return await client.request(write.method, path, json=content, headers=headers)

    for field in sorted(SERVER_OWNED.keys() - write.takes):
        response = await send({**body, field: SERVER_OWNED[field]})

        problem = assert_problem(response, 422, "validation_failed")
        assert [error["loc"][-1] for error in problem["errors"]] == [field], problem
        assert await snapshot(world.app.state.database) == before, field
    # The control: without them, the same write is carried out.
    done = await send(body)
    assert done.status_code in {200, 201, 202, 204}, done.text
