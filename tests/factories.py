"""Rows for tests, made directly in the database, and the few HTTP steps most tests share."""

import itertools
from typing import Any

import httpx
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.config import Settings
from app.core.security import PasswordHasher
from app.models import Post, User
from app.models.user import username_key
from app.posts import repository as posts_repository
from app.posts import slugs

DEFAULT_PASSWORD = "correct horse battery staple"
_numbers = itertools.count(1)
# Cheap hashing parameters come from the environment conftest sets.
_hasher = PasswordHasher(Settings())


async def make_user(
    session: AsyncSession,
    *,
    username: str | None = None,
    email: str | None = None,
    password: str = DEFAULT_PASSWORD,
    is_superuser: bool = False,
    is_active: bool = True,
    bio: str | None = None,
) -> User:
    number = next(_numbers)
    username = username or f"user{number}"
    user = User(
        username=username,
        username_key=username_key(username),
        email=(email or f"{username}@example.com").lower(),
        hashed_password=await _hasher.hash(password),
        is_superuser=is_superuser,
        is_active=is_active,
        bio=bio,
    )
    session.add(user)
    await session.commit()
    return user


async def make_post(
    session: AsyncSession,
    author: User,
    *,
    title: str | None = None,
    content: str = "Hello.",
    description: str = "",
) -> Post:
    """A post without tags; its slug is its title's, made unique with a number."""
    number = next(_numbers)
    title = title or f"Post {number}"
    post = Post(
        title=title,
        slug=f"{slugs.base_of(title)}-{number}",
        description=description,
        content=content,
        author_id=author.id,
    )
    session.add(post)
    await session.flush()
    await posts_repository.count_post_of(session, author.id, 1)
    await session.commit()
    return post


async def login(
    client: httpx.AsyncClient, username: str, password: str = DEFAULT_PASSWORD
) -> dict[str, Any]:
    """Sign in through the API; the token pair."""
    response = await client.post(
        "/api/v1/auth/token", data={"username": username, "password": password}
    )
    assert response.status_code == 200, response.text
    tokens: dict[str, Any] = response.json()
    return tokens


def bearer(access_token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {access_token}"}


async def auth_headers(
    client: httpx.AsyncClient, user: User, password: str = DEFAULT_PASSWORD
) -> dict[str, str]:
    tokens = await login(client, user.username, password)
    return bearer(tokens["access_token"])
