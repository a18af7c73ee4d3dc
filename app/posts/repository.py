from sqlalchemy import Select, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import contains_eager

from app.core.pagination import Page, PageRequest, paginate
from app.models import Post, User


def _with_author(*, include_hidden: bool) -> Select[Post]:
    """Posts with their author's id and name, in one query; a deactivated author's are hidden
    unless `include_hidden`."""
    statement = (
        select(Post)
        .join(Post.author)
        .options(contains_eager(Post.author).load_only(User.id, User.username))
    )
    return statement if include_hidden else statement.where(User.is_active.is_(True))


async def get_with_author(
    session: AsyncSession, post_id: int, *, include_hidden: bool, for_update: bool = False
) -> Post | None:
    """`for_update` locks the post until the transaction ends: an edit and a deletion of it run
    one after the other, and the later one finds what the earlier left."""
    statement = _with_author(include_hidden=include_hidden).where(Post.id == post_id)
    if for_update:
        statement = statement.with_for_update(of=Post)
    return await session.scalar(statement)


async def list_newest_first(
    session: AsyncSession,
    page: PageRequest,
    *,
    author_id: int | None = None,
    include_hidden: bool,
) -> Page[Post]:
    statement = _with_author(include_hidden=include_hidden).order_by(
        Post.created_at.desc(), Post.id.desc()
    )
    if author_id is not None:
        statement = statement.where(Post.author_id == author_id)
    return await paginate(session, statement, page)


async def ids_by_author(session: AsyncSession, author_id: int) -> list[int]:
    return list(await session.scalars(select(Post.id).where(Post.author_id == author_id)))
