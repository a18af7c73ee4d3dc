from sqlalchemy import Select, func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import contains_eager

from app.models import Post, User


def _with_author() -> Select[Post]:
    # The author's id and name come with the post in one query.
    return (
        select(Post)
        .join(Post.author)
        .options(contains_eager(Post.author).load_only(User.id, User.username))
    )


async def get_with_author(session: AsyncSession, post_id: int) -> Post | None:
    return await session.scalar(_with_author().where(Post.id == post_id))


async def list_newest_first(
    session: AsyncSession, *, limit: int, offset: int, author_id: int | None = None
) -> list[Post]:
    statement = _with_author().order_by(Post.created_at.desc(), Post.id.desc())
    if author_id is not None:
        statement = statement.where(Post.author_id == author_id)
    return list(await session.scalars(statement.limit(limit).offset(offset)))


async def count(session: AsyncSession, *, author_id: int | None = None) -> int:
    statement = select(func.count()).select_from(Post)
    if author_id is not None:
        statement = statement.where(Post.author_id == author_id)
    return await session.scalar(statement) or 0
