from typing import Any

from sqlalchemy import ColumnElement, Integer, Row, bindparam, delete, exists, insert, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.db import execute_unless_taken
from app.core.pagination import Page, PageRequest, paginate
from app.models import Follow, User

# The viewer's id, None for anonymous callers (then "following" is false).
VIEWER_ID = bindparam("viewer_id", type_=Integer)
_PROFILE = select(
    User.id,
    User.username,
    User.bio,
    User.image,
    User.created_at,
    User.is_active,
    exists()
    .where(Follow.follower_id == VIEWER_ID, Follow.followee_id == User.id)
    .label("following"),
)
# Built once: a profile by id, or by username key.
_PROFILE_BY_ID = _PROFILE.where(User.id == bindparam("user_id"))
_PROFILE_BY_KEY = _PROFILE.where(User.username_key == bindparam("username_key"))


async def get_by_id(session: AsyncSession, user_id: int) -> User | None:
    return await session.get(User, user_id)


async def get_by_id_for_update(session: AsyncSession, user_id: int) -> User | None:
    """The user, locked until the transaction ends (read afresh even if already loaded)."""
    statement = (
        select(User)
        .where(User.id == user_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    return await session.scalar(statement)


async def find_taken(
    session: AsyncSession, *, username_key: str | None, email: str | None, exclude_id: int | None
) -> list[User]:
    """Users other than `exclude_id` holding that username or email."""
    conditions = []
    if username_key is not None:
        conditions.append(User.username_key == username_key)
    if email is not None:
        conditions.append(User.email == email)
    if not conditions:
        return []
    statement = select(User).where(or_(*conditions))
    if exclude_id is not None:
        statement = statement.where(User.id != exclude_id)
    return list(await session.scalars(statement))


async def list_oldest_first(session: AsyncSession, page: PageRequest) -> Page[User]:
    return await paginate(session, select(User).order_by(User.id), page)


async def lock_active_superuser_ids(session: AsyncSession) -> list[int]:
    """The active administrators, locked until the transaction ends (SQLite locks the whole
    database for a writer anyway), so two of them cannot each demote the other."""
    statement = (
        select(User.id)
        .where(User.is_superuser.is_(True), User.is_active.is_(True))
        .order_by(User.id)  # every locker takes them in one order
        .with_for_update()
    )
    return list(await session.scalars(statement))


async def delete_by_id(session: AsyncSession, user_id: int) -> None:
    """Delete the user; the database cascades to posts, logins and refresh tokens."""
    await session.execute(
        delete(User).where(User.id == user_id).execution_options(synchronize_session=False)
    )


async def profile_by_id(
    session: AsyncSession, user_id: int, *, viewer_id: int | None
) -> Row[*tuple[Any, ...]] | None:
    """The user's public profile and is_active, and whether the viewer follows them."""
    result = await session.execute(_PROFILE_BY_ID, {"user_id": user_id, "viewer_id": viewer_id})
    return result.first()


async def profile_by_key(
    session: AsyncSession, username_key: str, *, viewer_id: int | None
) -> Row[*tuple[Any, ...]] | None:
    result = await session.execute(
        _PROFILE_BY_KEY, {"username_key": username_key, "viewer_id": viewer_id}
    )
    return result.first()


async def find_for_share(
    session: AsyncSession, *, user_id: int | None, username_key: str | None
) -> tuple[int, bool] | None:
    """The user's id and is_active, kept from deletion until the transaction ends (FOR KEY
    SHARE on PostgreSQL): a follow written meanwhile cannot lose its user."""
    condition: ColumnElement[bool] = (
        User.id == user_id if username_key is None else User.username_key == username_key
    )
    statement = (
        select(User.id, User.is_active).where(condition).with_for_update(read=True, key_share=True)
    )
    row = (await session.execute(statement)).first()
    return None if row is None else (row.id, row.is_active)


_FOLLOW_KEY = Follow.metadata.tables["follows"].primary_key


async def add_follow(session: AsyncSession, *, follower_id: int, followee_id: int) -> None:
    """Idempotent: a follow that exists already, or that a concurrent request adds, stays."""
    existing = select(
        exists().where(Follow.follower_id == follower_id, Follow.followee_id == followee_id)
    )
    if await session.scalar(existing):
        return
    statement = insert(Follow).values(follower_id=follower_id, followee_id=followee_id)
    await execute_unless_taken(session, statement, _FOLLOW_KEY)


async def remove_follow(session: AsyncSession, *, follower_id: int, followee_id: int) -> None:
    await session.execute(
        delete(Follow).where(Follow.follower_id == follower_id, Follow.followee_id == followee_id)
    )
