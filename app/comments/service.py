"""Comments on posts: anyone who may see a post reads its comments, oldest first; signed-in
users write them; a comment's author or an administrator deletes it.

A deactivated user's comments are hidden from everyone but administrators, as their posts are.
"""

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import structlog
from sqlalchemy import Row
from sqlalchemy.ext.asyncio import AsyncSession

from app.comments import repository
from app.comments.errors import CommentNotFound, NotCommentAuthor
from app.core.pagination import Page, PageRequest
from app.models import User
from app.posts import service as posts_service
from app.posts.service import AuthorView

log = structlog.get_logger(__name__)


@dataclass(frozen=True, slots=True)
class CommentView:
    """A comment as a given viewer sees it."""

    id: int
    post_id: int
    body: str
    created_at: datetime
    updated_at: datetime
    author: AuthorView


def _sees_hidden(viewer: User | None) -> bool:
    return viewer is not None and viewer.is_superuser


def _view(row: Row[*tuple[Any, ...]]) -> CommentView:
    return CommentView(
        id=row.id,
        post_id=row.post_id,
        body=row.body,
        created_at=row.created_at,
        updated_at=row.updated_at,
        author=AuthorView(
            id=row.author_id,
            username=row.author_username,
            bio=row.author_bio,
            image=row.author_image,
            following=bool(row.author_following),
        ),
    )


async def list_for_post(
    session: AsyncSession,
    *,
    viewer: User | None,
    post_id: int | None = None,
    slug: str | None = None,
) -> list[CommentView]:
    """Every comment of the post, oldest first. PostNotFound."""
    found_id = await posts_service.get_visible_id(session, viewer, post_id=post_id, slug=slug)
    rows = await repository.list_for_post(
        session,
        found_id,
        viewer_id=None if viewer is None else viewer.id,
        include_hidden=_sees_hidden(viewer),
    )
    return [_view(row) for row in rows]


async def page_for_post(
    session: AsyncSession,
    page: PageRequest,
    *,
    viewer: User | None,
    post_id: int | None = None,
    slug: str | None = None,
) -> Page[CommentView]:
    """A page of the post's comments, oldest first. PostNotFound."""
    found_id = await posts_service.get_visible_id(session, viewer, post_id=post_id, slug=slug)
    rows = await repository.page_for_post(
        session,
        found_id,
        page,
        viewer_id=None if viewer is None else viewer.id,
        include_hidden=_sees_hidden(viewer),
    )
    return rows.map(_view)


async def add(
    session: AsyncSession,
    author: User,
    body: str,
    *,
    post_id: int | None = None,
    slug: str | None = None,
) -> CommentView:
    """A new comment on a post `author` may see. PostNotFound."""
    found_id, found_slug = await posts_service.get_to_share(
        session, author, post_id=post_id, slug=slug
    )
    comment_id = await repository.insert_comment(
        session, post_id=found_id, author_id=author.id, body=body
    )
    posts_service.announce_change(session, found_id, found_slug)
    log.info("comment.added", comment_id=comment_id, post_id=found_id, author_id=author.id)
    return _view(await repository.view_by_id(session, comment_id, viewer_id=author.id))


async def delete(
    session: AsyncSession,
    user: User,
    comment_id: int,
    *,
    post_id: int | None = None,
    slug: str | None = None,
) -> None:
    """PostNotFound, then CommentNotFound (also for a comment on another post), then
    NotCommentAuthor (neither its author nor an administrator)."""
    found_id, found_slug = await posts_service.get_to_share(
        session, user, post_id=post_id, slug=slug
    )
    comment = await repository.get_for_update(
        session, comment_id, post_id=found_id, include_hidden=_sees_hidden(user)
    )
    if comment is None:
        raise CommentNotFound
    if comment.author_id != user.id and not user.is_superuser:
        raise NotCommentAuthor
    await session.delete(comment)
    await session.flush()
    posts_service.announce_change(session, found_id, found_slug)
    log.info("comment.deleted", comment_id=comment_id, post_id=found_id)
