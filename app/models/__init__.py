"""Every table, imported here so that Alembic and the mappers see the whole graph."""

from app.models.account_token import AccountToken, AccountTokenPurpose
from app.models.base import Base
from app.models.comment import Comment
from app.models.favorite import Favorite
from app.models.follow import Follow
from app.models.login import Login
from app.models.outbox_message import OutboxMessage, OutboxStatus
from app.models.post import Post
from app.models.post_tag import PostTag
from app.models.refresh_token import RefreshToken
from app.models.tag import Tag
from app.models.user import User

__all__ = [
    "AccountToken",
    "AccountTokenPurpose",
    "Base",
    "Comment",
    "Favorite",
    "Follow",
    "Login",
    "OutboxMessage",
    "OutboxStatus",
    "Post",
    "PostTag",
    "RefreshToken",
    "Tag",
    "User",
]
