"""Posts: anyone reads, signed-in users write, authors and administrators edit."""

import structlog
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.pagination import Page, PageRequest
from app.models import Post, User
from app.posts import repository
from app.posts.errors import NotPostAuthor, PostNotFound
from app.posts.schemas import PostCreate, PostRead, PostUpdate

log = structlog.get_logger(__name__)


async def create(session: AsyncSession, author: User, data: PostCreate) -> Post:
    post = Post(title=data.title, content=data.content, author_id=author.id, author=author)
    session.add(post)
    await session.flush()
    log.info("post.created", post_id=post.id, author_id=author.id)
    return post


async def get(session: AsyncSession, post_id: int) -> Post:
    post = await repository.get_with_author(session, post_id)
    if post is None:
        raise PostNotFound
    return post


def ensure_can_edit(user: User, post: Post) -> None:
    if post.author_id != user.id and not user.is_superuser:
        raise NotPostAuthor


async def list_newest_first(
    session: AsyncSession, page: PageRequest, *, author_id: int | None = None
) -> Page[PostRead]:
    posts = await repository.list_newest_first(
        session, limit=page.limit, offset=page.offset, author_id=author_id
    )
    return Page[PostRead](
        items=[PostRead.model_validate(post) for post in posts],
        total=await repository.count(session, author_id=author_id),
        limit=page.limit,
        offset=page.offset,
    )


async def update(session: AsyncSession, post: Post, changes: PostUpdate) -> Post:
    for field, value in changes.model_dump(exclude_unset=True).items():
        setattr(post, field, value)
    await session.flush()  # updated_at is set in Python, so nothing is expired and re-read here
    log.info("post.updated", post_id=post.id)
    return post


async def delete(session: AsyncSession, post: Post) -> None:
    await session.delete(post)
    await session.flush()
    log.info("post.deleted", post_id=post.id)
