"""Every statement of the comments domain. A comment is read with its author's public profile,
and whether the viewer follows them, in one statement; a page of them in two."""

from typing import Any

from sqlalchemy import Integer, Row, bindparam, exists, func, insert, select, true
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.pagination import Page, PageRequest
from app.models import Comment, Follow, User

# The viewer's id, None for anonymous callers (then "following" is false).
VIEWER_ID = bindparam("viewer_id", type_=Integer)

_VIEW = select(
    Comment.id,
    Comment.post_id,
    Comment.body,
    Comment.created_at,
    Comment.updated_at,
    User.id.label("author_id"),
    User.username.label("author_username"),
    User.bio.label("author_bio"),
    User.image.label("author_image"),
    exists()
    .where(Follow.followee_id == Comment.author_id, Follow.follower_id == VIEWER_ID)
    .label("author_following"),
).join(User, User.id == Comment.author_id)


def _of_post(post_id: int, *, include_hidden: bool) -> list[Any]:
    """A post's comments; a deactivated author's are hidden unless `include_hidden`."""
    conditions: list[Any] = [Comment.post_id == post_id]
    conditions.append(true() if include_hidden else User.is_active.is_(True))
    return conditions


_OLDEST_FIRST = (Comment.created_at, Comment.id)


async def list_for_post(
    session: AsyncSession, post_id: int, *, viewer_id: int | None, include_hidden: bool
) -> list[Row[*tuple[Any, ...]]]:
    statement = _VIEW.where(*_of_post(post_id, include_hidden=include_hidden)).order_by(
        *_OLDEST_FIRST
    )
    return list((await session.execute(statement, {"viewer_id": viewer_id})).all())


async def page_for_post(
    session: AsyncSession,
    post_id: int,
    page: PageRequest,
    *,
    viewer_id: int | None,
    include_hidden: bool,
) -> Page[Row[*tuple[Any, ...]]]:
    conditions = _of_post(post_id, include_hidden=include_hidden)
    statement = (
        _VIEW.where(*conditions).order_by(*_OLDEST_FIRST).limit(page.limit).offset(page.offset)
    )
    rows = (await session.execute(statement, {"viewer_id": viewer_id})).all()
    counting = (
        select(func.count())
        .select_from(Comment)
        .join(User, User.id == Comment.author_id)
        .where(*conditions)
    )
    total = await session.scalar(counting)
    return Page(items=rows, total=total or 0, limit=page.limit, offset=page.offset)


async def view_by_id(
    session: AsyncSession, comment_id: int, *, viewer_id: int
) -> Row[*tuple[Any, ...]]:
    """The view of a comment this unit of work has just written: it is there."""
    result = await session.execute(_VIEW.where(Comment.id == comment_id), {"viewer_id": viewer_id})
    return result.one()


async def insert_comment(session: AsyncSession, *, post_id: int, author_id: int, body: str) -> int:
    statement = (
        insert(Comment)
        .values(post_id=post_id, author_id=author_id, body=body)
        .returning(Comment.id)
    )
    return int((await session.execute(statement)).scalar_one())


async def get_for_update(
    session: AsyncSession, comment_id: int, *, post_id: int, include_hidden: bool
) -> Comment | None:
    """The comment, if it is on this post (and by an active author unless `include_hidden`),
    locked until the transaction ends."""
    statement = (
        select(Comment)
        .join(User, User.id == Comment.author_id)
        .where(
            Comment.id == comment_id,
            Comment.post_id == post_id,
            true() if include_hidden else User.is_active.is_(True),
        )
        .with_for_update(of=Comment)
    )
    return await session.scalar(statement)
