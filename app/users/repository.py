from sqlalchemy import delete, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.pagination import Page, PageRequest, paginate
from app.models import User


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
