from typing import TYPE_CHECKING

from sqlalchemy import String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.core.input import EMAIL_MAX_LENGTH
from app.models.base import Base, Timestamped

if TYPE_CHECKING:
    from app.models.login import Login
    from app.models.post import Post

USERNAME_MIN_LENGTH = 3
USERNAME_MAX_LENGTH = 32
# What a username is made of: any other text names nobody.
USERNAME_PATTERN = r"^[A-Za-z0-9_.\-]+$"
BIO_MAX_LENGTH = 2000
IMAGE_URL_MAX_LENGTH = 2048


def username_key(username: str) -> str:
    """What makes two usernames the same one: `Ann` and `ann` are."""
    return username.lower()


class User(Timestamped, Base):
    __tablename__ = "users"
    # Ids are never reused, on SQLite too: a link or a cache entry must not come to mean another
    # account once this one is deleted (PostgreSQL's sequences never go back).
    __table_args__ = ({"sqlite_autoincrement": True},)

    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(USERNAME_MAX_LENGTH))
    # Lowercased username: uniqueness ignores case with a plain unique constraint, which every
    # database and Alembic's autogenerate understand (a functional index on lower() is not).
    username_key: Mapped[str] = mapped_column(String(USERNAME_MAX_LENGTH), unique=True)
    # Stored lowercased, so it is unique case-insensitively as it stands.
    email: Mapped[str] = mapped_column(String(EMAIL_MAX_LENGTH), unique=True)
    hashed_password: Mapped[str] = mapped_column(String(255))
    bio: Mapped[str | None] = mapped_column(Text)
    image: Mapped[str | None] = mapped_column(String(IMAGE_URL_MAX_LENGTH))
    is_active: Mapped[bool] = mapped_column(default=True)
    is_superuser: Mapped[bool] = mapped_column(default=False)
    email_verified: Mapped[bool] = mapped_column(default=False)
    # How many posts the user has written, kept by the transactions that create and delete them:
    # a list's total is a sum over authors, never a count over every post (app/posts).
    post_count: Mapped[int] = mapped_column(default=0, server_default="0")

    posts: Mapped[list["Post"]] = relationship(
        back_populates="author", lazy="raise", passive_deletes=True
    )
    logins: Mapped[list["Login"]] = relationship(
        back_populates="user", lazy="raise", passive_deletes=True
    )
