"""Posts: anyone reads, signed-in users write, authors and administrators edit.

A deactivated author's posts are hidden from everyone but administrators.
"""

import structlog
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.events import publish
from app.core.pagination import Page, PageRequest
from app.models import Post, User
from app.posts import repository
from app.posts.errors import NotPostAuthor, PostNotFound
from app.posts.events import PostChanged
from app.posts.schemas import PostCreate, PostUpdate

log = structlog.get_logger(__name__)


def _sees_hidden(viewer: User | None) -> bool:
    return viewer is not None and viewer.is_superuser


async def create(session: AsyncSession, author: User, data: PostCreate) -> Post:
    post = Post(title=data.title, content=data.content, author_id=author.id, author=author)
    session.add(post)
    await session.flush()
    publish(session, PostChanged(post_id=post.id))
    log.info("post.created", post_id=post.id, author_id=author.id)
    return post


async def get(
    session: AsyncSession, post_id: int, *, viewer: User | None, for_update: bool = False
) -> Post:
    post = await repository.get_with_author(
        session, post_id, include_hidden=_sees_hidden(viewer), for_update=for_update
    )
    if post is None:
        raise PostNotFound
    return post


def ensure_can_edit(user: User, post: Post) -> None:
    if post.author_id != user.id and not user.is_superuser:
        raise NotPostAuthor


async def list_newest_first(
    session: AsyncSession,
    page: PageRequest,
    *,
    viewer: User | None,
    author_id: int | None = None,
) -> Page[Post]:
    return await repository.list_newest_first(
        session, page, author_id=author_id, include_hidden=_sees_hidden(viewer)
    )


async def ids_by_author(session: AsyncSession, author_id: int) -> list[int]:
    return await repository.ids_by_author(session, author_id)


async def update(session: AsyncSession, post: Post, changes: PostUpdate) -> Post:
    for field, value in changes.model_dump(exclude_unset=True).items():
        setattr(post, field, value)
    await session.flush()  # updated_at is set in Python, so nothing is expired and re-read here
    publish(session, PostChanged(post_id=post.id))
    log.info("post.updated", post_id=post.id)
    return post


async def delete(session: AsyncSession, post: Post) -> None:
    await session.delete(post)
    await session.flush()
    publish(session, PostChanged(post_id=post.id))
    log.info("post.deleted", post_id=post.id)
