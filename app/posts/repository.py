"""Every statement of the posts domain. A post is read with everything its view shows (author's
profile, tags, favorites, the viewer's favorite and follow) in one statement, a page of them in
two (the page, its total), whatever the page size; the total of a list by author is a sum of
maintained per-author counts, not a count over the posts."""

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Integer,
    Row,
    String,
    bindparam,
    cast,
    delete,
    exists,
    func,
    insert,
    select,
    true,
    update,
)
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased
from sqlalchemy.orm.attributes import set_committed_value

from app.core.db import execute_unless_taken
from app.core.pagination import Page, PageRequest
from app.models import Favorite, Follow, Post, PostTag, Tag, User

# The viewer's id, None for anonymous callers: with it, "favorited" and "following" are false.
VIEWER_ID = bindparam("viewer_id", type_=Integer)
# Between a post's tags, and between a tag's position and its name: characters no tag contains
# (app/models/tag.py). SQLite before 3.44 cannot order inside an aggregate, so the positions go
# along and the tags are put in order once read (tags_of).
TAG_SEPARATOR = "\x1e"
POSITION_SEPARATOR = "\x1f"

_tag_entries = (
    select(
        func.aggregate_strings(
            cast(PostTag.position, String) + POSITION_SEPARATOR + Tag.name, TAG_SEPARATOR
        )
    )
    .select_from(PostTag)
    .join(Tag, Tag.id == PostTag.tag_id)
    .where(PostTag.post_id == Post.id)
    .scalar_subquery()
)
# Deactivated users are hidden, their favorites too: they are not counted.
_fan = aliased(User, name="fan")
_favorites_count = (
    select(func.count())
    .select_from(Favorite)
    .join(_fan, _fan.id == Favorite.user_id)
    .where(Favorite.post_id == Post.id, _fan.is_active.is_(True))
    .scalar_subquery()
)
_favorited = exists().where(Favorite.post_id == Post.id, Favorite.user_id == VIEWER_ID)
_following = exists().where(Follow.followee_id == Post.author_id, Follow.follower_id == VIEWER_ID)

_VIEW = select(
    Post.id,
    Post.slug,
    Post.title,
    Post.description,
    Post.content,
    Post.created_at,
    Post.updated_at,
    User.id.label("author_id"),
    User.username.label("author_username"),
    User.bio.label("author_bio"),
    User.image.label("author_image"),
    _following.label("author_following"),
    _tag_entries.label("tag_entries"),
    _favorites_count.label("favorites_count"),
    _favorited.label("favorited"),
).join(User, User.id == Post.author_id)


def _visible(include_hidden: bool) -> ColumnElement[bool]:
    """A deactivated author's posts are hidden unless `include_hidden`."""
    return true() if include_hidden else User.is_active.is_(True)


# Built once: one post by id, or by slug, for each kind of viewer.
_VIEW_BY_ID = {
    hidden: _VIEW.where(Post.id == bindparam("post_id"), _visible(hidden))
    for hidden in (False, True)
}
_VIEW_BY_SLUG = {
    hidden: _VIEW.where(Post.slug == bindparam("slug"), _visible(hidden))
    for hidden in (False, True)
}


def tags_of(tag_entries: str | None) -> tuple[str, ...]:
    """A post's tags in their author's order, from the tag_entries column."""
    if not tag_entries:
        return ()
    entries = [entry.split(POSITION_SEPARATOR, 1) for entry in tag_entries.split(TAG_SEPARATOR)]
    return tuple(name for _position, name in sorted(entries, key=lambda entry: int(entry[0])))


async def view_by_id(
    session: AsyncSession, post_id: int, *, viewer_id: int | None, include_hidden: bool
) -> Row[*tuple[Any, ...]] | None:
    result = await session.execute(
        _VIEW_BY_ID[include_hidden], {"post_id": post_id, "viewer_id": viewer_id}
    )
    return result.first()


async def view_by_slug(
    session: AsyncSession, slug: str, *, viewer_id: int | None, include_hidden: bool
) -> Row[*tuple[Any, ...]] | None:
    result = await session.execute(
        _VIEW_BY_SLUG[include_hidden], {"slug": slug, "viewer_id": viewer_id}
    )
    return result.first()


@dataclass(frozen=True, slots=True)
class ListConditions:
    """Which posts a list shows; None leaves a condition out."""

    include_hidden: bool
    author_id: int | None = None
    author_key: str | None = None
    tag: str | None = None
    favorited_by_key: str | None = None
    followed_by: int | None = None


def _author_conditions(of: ListConditions) -> list[ColumnElement[bool]]:
    """Which authors' posts the list shows, on `User` (joined as each post's author)."""
    conditions = [_visible(of.include_hidden)]
    if of.author_id is not None:
        conditions.append(User.id == of.author_id)
    if of.author_key is not None:
        conditions.append(User.username_key == of.author_key)
    if of.followed_by is not None:
        conditions.append(
            User.id.in_(select(Follow.followee_id).where(Follow.follower_id == of.followed_by))
        )
    return conditions


def _conditions(of: ListConditions) -> list[ColumnElement[bool]]:
    conditions = _author_conditions(of)
    if of.tag is not None:
        conditions.append(
            exists()
            .where(PostTag.post_id == Post.id, PostTag.tag_id == Tag.id, Tag.name == of.tag)
            .correlate(Post)
        )
    if of.favorited_by_key is not None:
        favored = exists().where(
            Favorite.post_id == Post.id,
            Favorite.user_id == _fan.id,
            _fan.username_key == of.favorited_by_key,
        )
        if not of.include_hidden:
            favored = favored.where(_fan.is_active.is_(True))
        conditions.append(favored.correlate(Post))
    return conditions


async def list_newest_first(
    session: AsyncSession, page: PageRequest, of: ListConditions, *, viewer_id: int | None
) -> Page[Row[*tuple[Any, ...]]]:
    """A page of post views, newest first (ties by id), and how many the list has."""
    conditions = _conditions(of)
    statement = (
        _VIEW.where(*conditions)
        .order_by(Post.created_at.desc(), Post.id.desc())
        .limit(page.limit)
        .offset(page.offset)
    )
    rows = (await session.execute(statement, {"viewer_id": viewer_id})).all()
    total = await session.scalar(_counting(of, conditions))
    return Page(items=rows, total=total or 0, limit=page.limit, offset=page.offset)


def _counting(of: ListConditions, conditions: list[ColumnElement[bool]]) -> Any:
    """How many posts the list has. Lists chosen by author (all, one, the followed ones) sum
    their authors' post_count, a statement over users whatever the number of posts; lists by
    tag or favorite count their posts, which only those posts' index entries hold."""
    if of.tag is not None or of.favorited_by_key is not None:
        return (
            select(func.count())
            .select_from(Post)
            .join(User, User.id == Post.author_id)
            .where(*conditions)
        )
    return select(func.coalesce(func.sum(User.post_count), 0)).where(*_author_conditions(of))


async def count_post_of(session: AsyncSession, author_id: int, change: int) -> None:
    """Add `change` (1 for a new post, -1 for a deleted one) to the author's post_count, in the
    transaction of the change, so that the count is exact whenever it is read."""
    # updated_at is the account's own: a post written is no edit of its author.
    await session.execute(
        update(User)
        .where(User.id == author_id)
        .values(post_count=User.post_count + change, updated_at=User.updated_at)
    )


async def get_for_update(
    session: AsyncSession, *, post_id: int | None, slug: str | None, include_hidden: bool
) -> Post | None:
    """The post, locked until the transaction ends: an edit and a deletion of it run one after
    the other, and the later one finds what the earlier left."""
    statement = (
        select(Post)
        .join(User, User.id == Post.author_id)
        .where(_visible(include_hidden))
        .with_for_update(of=Post)
    )
    statement = statement.where(Post.id == post_id if slug is None else Post.slug == slug)
    return await session.scalar(statement)


async def find_id_and_slug(
    session: AsyncSession,
    *,
    post_id: int | None,
    slug: str | None,
    include_hidden: bool,
    for_share: bool = False,
) -> tuple[int, str] | None:
    """The post's id and slug. `for_share` keeps it from deletion until the transaction ends
    (FOR KEY SHARE on PostgreSQL): a favorite or a comment written to it meanwhile cannot lose
    its post."""
    statement = (
        select(Post.id, Post.slug)
        .join(User, User.id == Post.author_id)
        .where(_visible(include_hidden))
        .where(Post.id == post_id if slug is None else Post.slug == slug)
    )
    if for_share:
        statement = statement.with_for_update(of=Post, read=True, key_share=True)
    row = (await session.execute(statement)).first()
    return None if row is None else (row.id, row.slug)


_SLUG_UNIQUE = next(
    c for c in Post.metadata.tables["posts"].constraints if c.name == "uq_posts_slug"
)


async def insert_post(
    session: AsyncSession, *, author_id: int, slug: str, title: str, description: str, content: str
) -> int | None:
    """The new post's id; None, with nothing written, when another post holds the slug."""
    statement = (
        insert(Post)
        .values(
            author_id=author_id, slug=slug, title=title, description=description, content=content
        )
        .returning(Post.id)
    )
    result = await execute_unless_taken(session, statement, _SLUG_UNIQUE)
    return None if result is None else int(result.scalar_one())


async def slug_taken(session: AsyncSession, slug: str) -> bool:
    return bool(await session.scalar(select(exists().where(Post.slug == slug))))


async def set_slug(session: AsyncSession, post: Post, slug: str) -> bool:
    """Give the post this slug; False, with nothing changed, when another post holds it."""
    statement = (
        update(Post)
        .where(Post.id == post.id)
        .values(slug=slug)
        .execution_options(synchronize_session=False)
    )
    if await execute_unless_taken(session, statement, _SLUG_UNIQUE) is None:
        return False
    set_committed_value(post, "slug", slug)
    return True


async def replace_tags(session: AsyncSession, post_id: int, names: Sequence[str]) -> None:
    """The post carries exactly these tags (distinct names), in this order."""
    await session.execute(delete(PostTag).where(PostTag.post_id == post_id))
    await add_tags(session, post_id, names)


async def add_tags(session: AsyncSession, post_id: int, names: Sequence[str]) -> None:
    """Tag a post that carries none yet with these tags (distinct names), in this order."""
    if not names:
        return
    tag_ids = await _tag_ids(session, names)
    await session.execute(
        insert(PostTag),
        [
            {"post_id": post_id, "tag_id": tag_ids[name], "position": position}
            for position, name in enumerate(names)
        ],
    )


_TAG_NAME_UNIQUE = next(
    c for c in Tag.metadata.tables["tags"].constraints if c.name == "uq_tags_name"
)


async def _tag_ids(session: AsyncSession, names: Sequence[str]) -> dict[str, int]:
    """The ids of these tags, made for those that do not exist yet."""
    existing = select(Tag.name, Tag.id).where(Tag.name.in_(names))
    tag_ids: dict[str, int] = dict((await session.execute(existing)).all())
    for name in names:
        if name not in tag_ids:
            # A concurrent writer may make the same tag: then it is theirs that is used.
            await execute_unless_taken(session, insert(Tag).values(name=name), _TAG_NAME_UNIQUE)
    if len(tag_ids) < len(names):
        tag_ids = dict((await session.execute(existing)).all())
    return tag_ids


_FAVORITE_KEY = Favorite.metadata.tables["favorites"].primary_key


async def add_favorite(session: AsyncSession, *, user_id: int, post_id: int) -> None:
    """Idempotent: a favorite that exists already, or that a concurrent request adds, stays."""
    if await _favorited_by(session, user_id=user_id, post_id=post_id):
        return
    await execute_unless_taken(
        session, insert(Favorite).values(user_id=user_id, post_id=post_id), _FAVORITE_KEY
    )


async def _favorited_by(session: AsyncSession, *, user_id: int, post_id: int) -> bool:
    statement = select(exists().where(Favorite.user_id == user_id, Favorite.post_id == post_id))
    return bool(await session.scalar(statement))


async def remove_favorite(session: AsyncSession, *, user_id: int, post_id: int) -> None:
    await session.execute(
        delete(Favorite).where(Favorite.user_id == user_id, Favorite.post_id == post_id)
    )


async def tags_in_use(session: AsyncSession, *, include_hidden: bool) -> list[str]:
    """Every tag some post carries (of an active author unless `include_hidden`)."""
    statement = (
        select(Tag.name)
        .distinct()
        .join(PostTag, PostTag.tag_id == Tag.id)
        .join(Post, Post.id == PostTag.post_id)
        .join(User, User.id == Post.author_id)
        .where(_visible(include_hidden))
    )
    return list(await session.scalars(statement))


async def ids_and_slugs_by_author(session: AsyncSession, author_id: int) -> list[tuple[int, str]]:
    statement = select(Post.id, Post.slug).where(Post.author_id == author_id).order_by(Post.id)
    return [(row.id, row.slug) for row in await session.execute(statement)]
