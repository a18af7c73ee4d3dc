"""Follows through HTTP: PUT|DELETE /api/v1/users/{user_id}/follow, and what profiles say."""

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.models import Follow
from app.users import service as users_service
from app.users.errors import CannotFollowYourself, UserNotFound
from tests.factories import auth_headers, make_user
from tests.helpers import assert_problem, count_rows, open_session

USERS = "/api/v1/users/"


def follow_url(user_id: int) -> str:
    return f"{USERS}{user_id}/follow"


async def count_follows(session: AsyncSession) -> int:
    return await count_rows(session, select(func.count()).select_from(Follow))


async def test_follow_and_unfollow_are_idempotent_and_answer_the_profile(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    ann = await make_user(session, username="ann")
    bob = await make_user(session, username="bob", bio="Bob.")
    headers = await auth_headers(client, ann)

    followed = await client.put(follow_url(bob.id), headers=headers)
    again = await client.put(follow_url(bob.id), headers=headers)

    assert followed.status_code == again.status_code == 200, followed.text
    assert followed.json() == again.json()
    assert followed.json()["following"] is True
    assert (followed.json()["id"], followed.json()["username"], followed.json()["bio"]) == (
        bob.id,
        "bob",
        "Bob.",
    )
    assert (await client.get(f"{USERS}{bob.id}", headers=headers)).json()["following"] is True
    assert (await client.get(f"{USERS}{bob.id}")).json()["following"] is False
    assert await count_follows(session) == 1

    unfollowed = await client.delete(follow_url(bob.id), headers=headers)
    unfollowed_again = await client.delete(follow_url(bob.id), headers=headers)

    assert unfollowed.json()["following"] is unfollowed_again.json()["following"] is False
    assert await count_follows(session) == 0


async def test_nobody_follows_themselves(client: httpx.AsyncClient, session: AsyncSession) -> None:
    ann = await make_user(session, username="ann")
    headers = await auth_headers(client, ann)

    assert_problem(
        await client.put(follow_url(ann.id), headers=headers), 409, "cannot_follow_yourself"
    )
    unfollowed = await client.delete(follow_url(ann.id), headers=headers)
    assert unfollowed.json()["following"] is False
    assert await count_follows(session) == 0


@pytest.mark.parametrize("method", ["PUT", "DELETE"])
async def test_following_needs_a_token_first_then_a_visible_user(
    client: httpx.AsyncClient, session: AsyncSession, method: str
) -> None:
    gone = await make_user(session, username="gone", is_active=False)
    admin = await make_user(session, username="root", is_superuser=True)
    headers = await auth_headers(client, await make_user(session, username="ann"))

    anonymous = await client.request(method, follow_url(999_999))
    missing = await client.request(method, follow_url(999_999), headers=headers)
    hidden = await client.request(method, follow_url(gone.id), headers=headers)
    by_admin = await client.request(
        method, follow_url(gone.id), headers=await auth_headers(client, admin)
    )

    assert_problem(anonymous, 401, "not_authenticated")
    assert_problem(missing, 404, "user_not_found")
    assert_problem(hidden, 404, "user_not_found")
    assert by_admin.status_code == 200
    assert by_admin.json()["following"] is (method == "PUT")


async def test_follows_go_with_either_user(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    ann = await make_user(session, username="ann")
    bob = await make_user(session, username="bob")
    carol = await make_user(session, username="carol")
    ann_headers = await auth_headers(client, ann)
    await client.put(follow_url(bob.id), headers=ann_headers)
    await client.put(follow_url(carol.id), headers=ann_headers)
    await client.put(follow_url(ann.id), headers=await auth_headers(client, carol))
    assert await count_follows(session) == 3

    await client.delete(f"{USERS}me", headers=await auth_headers(client, bob))
    assert await count_follows(session) == 2
    await client.delete(f"{USERS}me", headers=ann_headers)
    assert await count_follows(session) == 0


async def test_the_service_follows_by_username_whatever_its_case(app: FastAPI) -> None:
    database = app.state.database
    async with open_session(database) as session:
        ann = await make_user(session, username="ann")
        await make_user(session, username="Bob")
    async with database.transaction() as session:
        profile = await users_service.follow(session, ann, username="BOB")
        with pytest.raises(CannotFollowYourself):
            await users_service.follow(session, ann, username="Ann")
        with pytest.raises(UserNotFound):
            await users_service.follow(session, ann, username="nobody")
    async with database.transaction(read_only=True) as session:
        seen = await users_service.get_profile_by_username(session, "bob", viewer=ann)
        anonymous = await users_service.get_profile_by_username(session, "bob", viewer=None)
    assert (profile.username, profile.following) == ("Bob", True)
    assert seen == profile
    assert anonymous.following is False
