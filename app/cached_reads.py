"""Which reads the response cache keeps, and which committed writes make them stale.

The cache itself (app/core/response_cache.py, app/core/cache.py) knows nothing of posts or users:
this table names the cached routes and the tags each depends on, and subscribes the invalidations
to the domain events, which are delivered only after their unit of work has committed.
"""

from collections.abc import Mapping

from app.core.cache import CacheStore
from app.core.events import EventBus
from app.core.paths import (
    API_V1_PREFIX,
    CONDUIT_PREFIX,
    POSTS_PREFIX,
    TAGS_PREFIX,
    USERS_PREFIX,
)
from app.core.response_cache import CachedRoute
from app.models.user import USERNAME_MAX_LENGTH, username_key
from app.posts.events import PostChanged
from app.users.events import UserChanged, UserDeleted

# Every post read shows its author (name, and whether they are active): any change to any user
# makes post reads stale. Users change far more rarely than posts are read.
AUTHORS = "authors"
# The lists: a new, edited or deleted post, or a changed author, changes the first page.
POST_LISTS = "post-lists"
# The tags in use: any post's change may change them, and so may an author's deactivation.
TAGS = "tags"
# What a slug is made of (app/posts/slugs.py): anything else is no cache key.
SLUG = r"[a-z0-9]+(?:-[a-z0-9]+)*"
# What a username is made of (USERNAME_PATTERN), for Conduit's profiles by name.
USERNAME = rf"[A-Za-z0-9_.\-]{{1,{USERNAME_MAX_LENGTH}}}"


def post_tag(post_id: object) -> str:
    return f"post:{post_id}"


def slug_tag(slug: object) -> str:
    return f"slug:{slug}"


def user_tag(user_id: object) -> str:
    return f"user:{user_id}"


def username_tag(username: str) -> str:
    """A profile read by name: every spelling of the name (`Ann`, `ann`) shares it."""
    return f"username:{username_key(username)}"


def _post_read(parameters: Mapping[str, str]) -> tuple[str, ...]:
    return post_tag(parameters["post_id"]), AUTHORS


def _post_read_by_slug(parameters: Mapping[str, str]) -> tuple[str, ...]:
    return slug_tag(parameters["slug"]), AUTHORS


def _tags_read(_parameters: Mapping[str, str]) -> tuple[str, ...]:
    return (TAGS,)


def _user_read(parameters: Mapping[str, str]) -> tuple[str, ...]:
    return (user_tag(parameters["user_id"]),)


def _profile_read_by_username(parameters: Mapping[str, str]) -> tuple[str, ...]:
    return (username_tag(parameters["username"]),)


def _post_list(_parameters: Mapping[str, str]) -> tuple[str, ...]:
    return POST_LISTS, AUTHORS


CACHED_READS = (
    CachedRoute(f"{API_V1_PREFIX}{POSTS_PREFIX}/{{post_id}}", _post_read),
    CachedRoute(
        f"{API_V1_PREFIX}{POSTS_PREFIX}/by-slug/{{slug}}",
        _post_read_by_slug,
        parameters={"slug": SLUG},
    ),
    CachedRoute(f"{API_V1_PREFIX}{TAGS_PREFIX}", _tags_read),
    CachedRoute(f"{API_V1_PREFIX}{USERS_PREFIX}/{{user_id}}", _user_read),
    CachedRoute(
        f"{API_V1_PREFIX}{POSTS_PREFIX}/",
        _post_list,
        query=frozenset({"limit", "offset"}),
        first_page_only=True,
    ),
    # The Conduit API's reads (app/conduit): the same rows, in its wire format.
    CachedRoute(
        f"{CONDUIT_PREFIX}/articles/{{slug}}", _post_read_by_slug, parameters={"slug": SLUG}
    ),
    CachedRoute(
        f"{CONDUIT_PREFIX}/profiles/{{username}}",
        _profile_read_by_username,
        parameters={"username": USERNAME},
    ),
    CachedRoute(
        f"{CONDUIT_PREFIX}/articles",
        _post_list,
        query=frozenset({"tag", "author", "favorited", "limit", "offset"}),
        first_page_only=True,
    ),
    CachedRoute(f"{CONDUIT_PREFIX}/tags", _tags_read),
)


def invalidate_on_commit(events: EventBus, store: CacheStore) -> None:
    """Make the cached reads a committed write changed stale, before its response is sent."""

    async def post_changed(event: PostChanged) -> None:
        slugs = [slug_tag(slug) for slug in event.slugs]
        await store.invalidate([post_tag(event.post_id), *slugs, POST_LISTS, TAGS])

    async def user_changed(event: UserChanged) -> None:
        # A deactivation hides the user's posts, and with them the tags only they carry.
        usernames = [username_tag(username) for username in event.usernames]
        await store.invalidate([user_tag(event.user_id), *usernames, AUTHORS, POST_LISTS, TAGS])

    async def user_deleted(event: UserDeleted) -> None:
        tags = [user_tag(event.user_id), username_tag(event.username), AUTHORS, POST_LISTS, TAGS]
        tags += [post_tag(post_id) for post_id in event.post_ids]
        await store.invalidate(tags + [slug_tag(slug) for slug in event.post_slugs])

    events.subscribe(PostChanged, post_changed)
    events.subscribe(UserChanged, user_changed)
    events.subscribe(UserDeleted, user_deleted)
