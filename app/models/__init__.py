"""Every table, imported here so that Alembic and the mappers see the whole graph."""

from app.models.account_token import AccountToken, AccountTokenPurpose
from app.models.base import Base
from app.models.login import Login
from app.models.outbox_message import OutboxMessage, OutboxStatus
from app.models.post import Post
from app.models.refresh_token import RefreshToken
from app.models.user import User

__all__ = [
    "AccountToken",
    "AccountTokenPurpose",
    "Base",
    "Login",
    "OutboxMessage",
    "OutboxStatus",
    "Post",
    "RefreshToken",
    "User",
]
