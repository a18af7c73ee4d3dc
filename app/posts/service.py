"""Posts: anyone reads, signed-in users write, authors and administrators edit.

A deactivated author's posts are hidden from everyone but administrators. What a post shows is
its view (PostView), read for a given viewer, whose favorite and follow it says; both API surfaces
render it.
"""

import hashlib
import re
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

import structlog
from sqlalchemy import Row
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.conditional import IfMatch
from app.core.events import publish
from app.core.pagination import Page, PageRequest
from app.models import Post, User
from app.models.base import utcnow
from app.models.tag import TAG_MAX_LENGTH, TAG_PATTERN, TAGS_PER_POST_MAX
from app.models.user import username_key
from app.posts import repository, slugs
from app.posts.errors import InvalidTags, NotPostAuthor, PostChangedMeanwhile, PostNotFound
from app.posts.events import PostChanged
from app.posts.repository import ListConditions

log = structlog.get_logger(__name__)

# A fresh random suffix each time: a clash after the first is a race lost, and rare.
_SLUG_ATTEMPTS = 5
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class AuthorView:
    """An author's public profile, as a given viewer sees it."""

    id: int
    username: str
    bio: str | None
    image: str | None
    following: bool  # the viewer follows this author; False for anonymous viewers


@dataclass(frozen=True, slots=True)
class PostView:
    """A post as a given viewer sees it."""

    id: int
    slug: str
    title: str
    description: str
    content: str
    tags: tuple[str, ...]  # in the order the author gave them, no duplicates
    created_at: datetime
    updated_at: datetime
    author: AuthorView
    favorites_count: int
    favorited: bool  # the viewer favorited it; False for anonymous viewers


@dataclass(frozen=True, slots=True)
class PostChanges:
    """An edit; None leaves a field as it is. Empty tags remove every tag."""

    title: str | None = None
    description: str | None = None
    content: str | None = None
    tags: Sequence[str] | None = None


@dataclass(frozen=True, slots=True)
class PostFilter:
    """Which posts a list shows. An unknown author, tag or user gives an empty page."""

    author_id: int | None = None
    author_username: str | None = None  # case-insensitive
    tag: str | None = None
    favorited_by: str | None = None  # a username, case-insensitive


def _sees_hidden(viewer: User | None) -> bool:
    return viewer is not None and viewer.is_superuser


def _viewer_id(viewer: User | None) -> int | None:
    return None if viewer is None else viewer.id


def _view(row: Row[*tuple[Any, ...]]) -> PostView:
    return PostView(
        id=row.id,
        slug=row.slug,
        title=row.title,
        description=row.description,
        content=row.content,
        tags=repository.tags_of(row.tag_entries),
        created_at=row.created_at,
        updated_at=row.updated_at,
        author=AuthorView(
            id=row.author_id,
            username=row.author_username,
            bio=row.author_bio,
            image=row.author_image,
            following=bool(row.author_following),
        ),
        favorites_count=int(row.favorites_count),
        favorited=bool(row.favorited),
    )


_TAG_MATCHES = re.compile(TAG_PATTERN).fullmatch


def normalise_tags(tags: Sequence[str]) -> tuple[str, ...]:
    """Stripped, in the order given, each once. Blank, over-long or control-character tags, and
    more than TAGS_PER_POST_MAX of them, are refused (422)."""
    normalised = tuple(dict.fromkeys(tag.strip() for tag in tags))
    if len(normalised) > TAGS_PER_POST_MAX:
        raise InvalidTags(f"A post carries at most {TAGS_PER_POST_MAX} tags.")
    if any(not tag or len(tag) > TAG_MAX_LENGTH or not _TAG_MATCHES(tag) for tag in normalised):
        raise InvalidTags
    return normalised


def version_of(view: PostView) -> str:
    """A digest of all that the post shows every viewer alike (not `favorited`, `following`): the
    version its ETag names, the same from any read for any caller, and new with every edit, tag,
    favorite or change of its author's profile."""
    author = view.author
    shown = (
        view.id,
        view.slug,
        view.title,
        view.description,
        view.content,
        view.tags,
        view.created_at.isoformat(),
        view.updated_at.isoformat(),
        (author.id, author.username, author.bio, author.image),
        view.favorites_count,
    )
    return hashlib.sha256(repr(shown).encode()).hexdigest()[:32]


async def _view_of(session: AsyncSession, post_id: int, viewer: User | None) -> PostView:
    """The view of a post this unit of work has just written or checked: it is there."""
    row = await repository.view_by_id(
        session, post_id, viewer_id=_viewer_id(viewer), include_hidden=True
    )
    assert row is not None
    return _view(row)


async def create(
    session: AsyncSession,
    author: User,
    *,
    title: str,
    content: str,
    description: str = "",
    tags: Sequence[str] = (),
) -> PostView:
    """A new post, with a slug of its own even when another post has the same title."""
    normalised_tags = normalise_tags(tags)

    async def insert(slug: str) -> int | None:
        return await repository.insert_post(
            session,
            author_id=author.id,
            slug=slug,
            title=title,
            description=description,
            content=content,
        )

    slug, post_id = await _with_free_slug(session, slugs.base_of(title), insert)
    await repository.count_post_of(session, author.id, 1)
    await repository.add_tags(session, post_id, normalised_tags)
    publish(session, PostChanged(post_id=post_id, slugs=(slug,)))
    log.info("post.created", post_id=post_id, author_id=author.id)
    return await _view_of(session, post_id, author)


async def get_view(session: AsyncSession, post_id: int, *, viewer: User | None) -> PostView:
    row = await repository.view_by_id(
        session, post_id, viewer_id=_viewer_id(viewer), include_hidden=_sees_hidden(viewer)
    )
    if row is None:
        raise PostNotFound
    return _view(row)


async def get_view_by_slug(session: AsyncSession, slug: str, *, viewer: User | None) -> PostView:
    row = await repository.view_by_slug(
        session, slug, viewer_id=_viewer_id(viewer), include_hidden=_sees_hidden(viewer)
    )
    if row is None:
        raise PostNotFound
    return _view(row)


def _one_key(post_id: int | None, slug: str | None) -> None:
    if (post_id is None) == (slug is None):
        raise TypeError("give exactly one of post_id and slug")


async def get_editable(
    session: AsyncSession, user: User, *, post_id: int | None = None, slug: str | None = None
) -> Post:
    """The post `user` may edit, locked until the unit of work ends: 404 (one they may not see),
    then 403 (neither its author nor an administrator)."""
    _one_key(post_id, slug)
    post = await repository.get_for_update(
        session, post_id=post_id, slug=slug, include_hidden=_sees_hidden(user)
    )
    if post is None:
        raise PostNotFound
    if post.author_id != user.id and not user.is_superuser:
        raise NotPostAuthor
    return post


async def update(
    session: AsyncSession,
    post: Post,
    changes: PostChanges,
    *,
    viewer: User,
    if_match: IfMatch | None = None,
) -> PostView:
    """Apply an edit to a post from get_editable. A new title whose words differ gives the post a
    new slug (the old one then names nothing); other edits keep it.

    With `if_match`, only if the post is still at a version it accepts (PostChangedMeanwhile
    otherwise): the post is locked, so no edit slips in between the check and this one.
    """
    if if_match is not None and not if_match.accepts(
        version_of(await _view_of(session, post.id, viewer))
    ):
        raise PostChangedMeanwhile
    normalised_tags = None if changes.tags is None else normalise_tags(changes.tags)
    old_slug = post.slug
    new_base = None
    if changes.title is not None and slugs.base_of(changes.title) != slugs.base_of(post.title):
        new_base = slugs.base_of(changes.title)
    for field in ("title", "description", "content"):
        value = getattr(changes, field)
        if value is not None:
            setattr(post, field, value)
    if normalised_tags is not None:
        await repository.replace_tags(session, post.id, normalised_tags)
        post.updated_at = utcnow()  # the row itself may not change, and the post did
    await session.flush()  # updated_at is set in Python, so nothing is expired and re-read here
    if new_base is not None:

        async def rename(slug: str) -> bool | None:
            return await repository.set_slug(session, post, slug) or None

        await _with_free_slug(session, new_base, rename)
    publish(
        session, PostChanged(post_id=post.id, slugs=tuple(dict.fromkeys((old_slug, post.slug))))
    )
    log.info("post.updated", post_id=post.id)
    return await _view_of(session, post.id, viewer)


async def _with_free_slug(
    session: AsyncSession, base: str, claim: Callable[[str], Awaitable[T | None]]
) -> tuple[str, T]:
    """Claim a free slug for `base`: `base` itself if no post holds it, else with a suffix.
    `claim` writes a candidate, or returns None when the unique constraint says it is taken
    (by a concurrent writer, when the check before saw it free)."""
    for attempt in range(_SLUG_ATTEMPTS):
        slug = base if attempt == 0 else slugs.with_suffix(base)
        if attempt == 0 and (slugs.is_reserved(slug) or await repository.slug_taken(session, slug)):
            continue
        claimed = await claim(slug)
        if claimed is not None:
            return slug, claimed
    raise RuntimeError(f"no free slug for {base!r} in {_SLUG_ATTEMPTS} attempts")


async def delete(session: AsyncSession, post: Post) -> None:
    """Delete a post from get_editable, with its tags' links, comments and favorites."""
    await session.delete(post)
    await session.flush()
    await repository.count_post_of(session, post.author_id, -1)
    publish(session, PostChanged(post_id=post.id, slugs=(post.slug,)))
    log.info("post.deleted", post_id=post.id)


async def list_newest_first(
    session: AsyncSession,
    page: PageRequest,
    *,
    viewer: User | None,
    filters: PostFilter = PostFilter(),
) -> Page[PostView]:
    """Newest first; posts created in the same instant are ordered by id."""
    conditions = ListConditions(
        include_hidden=_sees_hidden(viewer),
        author_id=filters.author_id,
        author_key=None
        if filters.author_username is None
        else username_key(filters.author_username),
        tag=filters.tag,
        favorited_by_key=None
        if filters.favorited_by is None
        else username_key(filters.favorited_by),
    )
    return await _page(session, page, conditions, viewer)


async def feed(session: AsyncSession, page: PageRequest, *, viewer: User) -> Page[PostView]:
    """The posts of the authors `viewer` follows, newest first."""
    conditions = ListConditions(include_hidden=_sees_hidden(viewer), followed_by=viewer.id)
    return await _page(session, page, conditions, viewer)


async def _page(
    session: AsyncSession, page: PageRequest, conditions: ListConditions, viewer: User | None
) -> Page[PostView]:
    rows = await repository.list_newest_first(
        session, page, conditions, viewer_id=_viewer_id(viewer)
    )
    return rows.map(_view)


async def get_visible_id(
    session: AsyncSession,
    viewer: User | None,
    *,
    post_id: int | None = None,
    slug: str | None = None,
) -> int:
    """The id of a post `viewer` may see. PostNotFound."""
    _one_key(post_id, slug)
    found = await repository.find_id_and_slug(
        session, post_id=post_id, slug=slug, include_hidden=_sees_hidden(viewer)
    )
    if found is None:
        raise PostNotFound
    return found[0]


async def get_to_share(
    session: AsyncSession, viewer: User, *, post_id: int | None = None, slug: str | None = None
) -> tuple[int, str]:
    """The id and slug of a post `viewer` may see, kept from deletion until the unit of work
    ends, for what is written about it (a favorite, a comment). PostNotFound."""
    _one_key(post_id, slug)
    found = await repository.find_id_and_slug(
        session, post_id=post_id, slug=slug, include_hidden=_sees_hidden(viewer), for_share=True
    )
    if found is None:
        raise PostNotFound
    return found


async def favorite(
    session: AsyncSession, user: User, *, post_id: int | None = None, slug: str | None = None
) -> PostView:
    """Idempotent: favoriting a favorite changes nothing."""
    found_id, found_slug = await get_to_share(session, user, post_id=post_id, slug=slug)
    await repository.add_favorite(session, user_id=user.id, post_id=found_id)
    publish(session, PostChanged(post_id=found_id, slugs=(found_slug,)))
    return await _view_of(session, found_id, user)


async def unfavorite(
    session: AsyncSession, user: User, *, post_id: int | None = None, slug: str | None = None
) -> PostView:
    """Idempotent: unfavoriting what is not a favorite changes nothing."""
    found_id, found_slug = await get_to_share(session, user, post_id=post_id, slug=slug)
    await repository.remove_favorite(session, user_id=user.id, post_id=found_id)
    publish(session, PostChanged(post_id=found_id, slugs=(found_slug,)))
    return await _view_of(session, found_id, user)


def announce_change(session: AsyncSession, post_id: int, slug: str) -> None:
    """What is written about a post elsewhere (a comment) makes the reads that show it stale."""
    publish(session, PostChanged(post_id=post_id, slugs=(slug,)))


async def list_tags(session: AsyncSession) -> list[str]:
    """Every tag some visible post carries, sorted (by code point, the same on every database)."""
    return sorted(await repository.tags_in_use(session, include_hidden=False))


async def ids_and_slugs_by_author(session: AsyncSession, author_id: int) -> list[tuple[int, str]]:
    return await repository.ids_and_slugs_by_author(session, author_id)
