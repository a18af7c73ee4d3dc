"""The rows of the benchmark's data set: users, posts with tags, comments, follows, favorites.

Pure generation, no database: each table's rows come in chunks of dicts keyed by the models'
column names, so a writer for any database can take them.
"""

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from app.models import Comment, Favorite, Follow, Post, PostTag, Tag, User
from app.posts.slugs import base_of, is_reserved

Row = dict[str, Any]
CHUNK_ROWS = 50_000

BENCH_USER_ID = 1
BENCH_USERNAME = "bench"
BENCH_EMAIL = "bench@example.com"
# Every seeded user has this password: one argon2 hash is made and shared by all.
BENCH_PASSWORD = "bench-password-1"

TAG_COUNT = 200
TAGS_PER_POST = 3
FOLLOWS_PER_USER = 20
# The benchmark user follows more, so that its feed is a real query over many authors.
BENCH_USER_FOLLOWS = 100
FAVORITES_PER_POST = 1
COMMENTS_PER_TWO_POSTS = 1
_WORDS = ("garlic", "autumn", "python", "harbour", "lantern", "orchard", "violin", "granite")
_CONTENT = (
    "A post seeded for the benchmark. It is long enough to look like a short article, with "
    "a few sentences of plain text, so that reads move a realistic number of bytes. "
) * 3


@dataclass(frozen=True)
class DatasetPlan:
    users: int
    posts: int

    @property
    def comments(self) -> int:
        return self.posts * COMMENTS_PER_TWO_POSTS // 2


@dataclass(frozen=True)
class TableRows:
    table_name: str
    chunks: Iterator[list[Row]]


def every_table(plan: DatasetPlan, password_hash: str) -> Iterator[TableRows]:
    """Parents before children, as the foreign keys need."""
    yield TableRows(User.__tablename__, _chunked(_users(plan, password_hash)))
    yield TableRows(Tag.__tablename__, _chunked(_tags()))
    yield TableRows(Post.__tablename__, _chunked(_posts(plan)))
    yield TableRows(PostTag.__tablename__, _chunked(_post_tags(plan)))
    yield TableRows(Comment.__tablename__, _chunked(_comments(plan)))
    yield TableRows(Follow.__tablename__, _chunked(_follows(plan)))
    yield TableRows(Favorite.__tablename__, _chunked(_favorites(plan)))


# Posts are spread over the last year, the newest last, one every few seconds at most.
_NEWEST = datetime(2026, 1, 1, tzinfo=UTC)


def created_at_of_post(post_id: int, plan: DatasetPlan) -> datetime:
    return _NEWEST - timedelta(seconds=(plan.posts - post_id) * 3)


def slug_of_post(post_id: int) -> str:
    return base_of(_title_of(post_id))


def _title_of(post_id: int) -> str:
    # The id makes each title, and so each slug, unique: no suffix is ever needed.
    return f"Bench post {post_id} on {_WORDS[post_id % len(_WORDS)]}"


def _users(plan: DatasetPlan, password_hash: str) -> Iterator[Row]:
    joined = _NEWEST - timedelta(days=400)
    for user_id in range(1, plan.users + 1):
        username = BENCH_USERNAME if user_id == BENCH_USER_ID else f"writer{user_id}"
        email = BENCH_EMAIL if user_id == BENCH_USER_ID else f"writer{user_id}@example.com"
        yield {
            "id": user_id,
            "username": username,
            "username_key": username.lower(),
            "email": email,
            "hashed_password": password_hash,
            "bio": f"Writer number {user_id}.",
            "image": None,
            "is_active": True,
            "is_superuser": False,
            "email_verified": True,
            "post_count": _posts_written_by(user_id, plan),
            "created_at": joined,
            "updated_at": joined,
        }


def _tags() -> Iterator[Row]:
    for tag_id in range(1, TAG_COUNT + 1):
        yield {"id": tag_id, "name": f"topic-{tag_id}"}


def _posts(plan: DatasetPlan) -> Iterator[Row]:
    for post_id in range(1, plan.posts + 1):
        slug = slug_of_post(post_id)
        assert not is_reserved(slug), slug
        created_at = created_at_of_post(post_id, plan)
        yield {
            "id": post_id,
            "slug": slug,
            "title": _title_of(post_id),
            "description": f"About {_WORDS[post_id % len(_WORDS)]}.",
            "content": _CONTENT,
            "author_id": _author_of(post_id, plan),
            "created_at": created_at,
            "updated_at": created_at,
        }


def _author_of(post_id: int, plan: DatasetPlan) -> int:
    return (post_id - 1) % plan.users + 1


def _posts_written_by(user_id: int, plan: DatasetPlan) -> int:
    """How many posts _author_of gives the user (users.post_count, which Quill keeps)."""
    return plan.posts // plan.users + (1 if user_id <= plan.posts % plan.users else 0)


def _post_tags(plan: DatasetPlan) -> Iterator[Row]:
    for post_id in range(1, plan.posts + 1):
        for position in range(TAGS_PER_POST):
            # Consecutive tag ids (mod TAG_COUNT): distinct within a post, as the key needs.
            tag_id = (post_id + position) % TAG_COUNT + 1
            yield {"post_id": post_id, "tag_id": tag_id, "position": position}


def _comments(plan: DatasetPlan) -> Iterator[Row]:
    for comment_id in range(1, plan.comments + 1):
        post_id = (comment_id * 2 - 1) % plan.posts + 1
        created_at = created_at_of_post(post_id, plan) + timedelta(minutes=5)
        yield {
            "id": comment_id,
            "post_id": post_id,
            "author_id": comment_id % plan.users + 1,
            "body": f"Comment {comment_id}: well said.",
            "created_at": created_at,
            "updated_at": created_at,
        }


def _follows(plan: DatasetPlan) -> Iterator[Row]:
    for follower_id in range(1, plan.users + 1):
        count = BENCH_USER_FOLLOWS if follower_id == BENCH_USER_ID else FOLLOWS_PER_USER
        followees = {(follower_id + step * 7) % plan.users + 1 for step in range(1, count + 1)}
        followees.discard(follower_id)
        for followee_id in sorted(followees):
            yield {"follower_id": follower_id, "followee_id": followee_id, "created_at": _NEWEST}


def _favorites(plan: DatasetPlan) -> Iterator[Row]:
    for post_id in range(1, plan.posts + 1):
        for offset in range(FAVORITES_PER_POST):
            user_id = (post_id * 13 + offset) % plan.users + 1
            yield {"user_id": user_id, "post_id": post_id, "created_at": _NEWEST}


def _chunked(rows: Iterator[Row]) -> Iterator[list[Row]]:
    chunk: list[Row] = []
    for row in rows:
        chunk.append(row)
        if len(chunk) == CHUNK_ROWS:
            yield chunk
            chunk = []
    if chunk:
        yield chunk
