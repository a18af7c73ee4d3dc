from typing import TYPE_CHECKING

from sqlalchemy import ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.models.base import Base, Timestamped

if TYPE_CHECKING:
    from app.models.comment import Comment
    from app.models.user import User

TITLE_MAX_LENGTH = 200
DESCRIPTION_MAX_LENGTH = 1000
# The largest valid post stays under MAX_REQUEST_BODY_BYTES's default (1 MiB) however it is
# encoded: even with every character JSON-escaped as a surrogate pair, 12 bytes each.
CONTENT_MAX_LENGTH = 80_000
# A slug is the title's words, and a suffix when another post holds those words already.
SLUG_MAX_LENGTH = 255


class Post(Timestamped, Base):
    __tablename__ = "posts"
    __table_args__ = (
        # "Newest first", with id as the tie-breaker, for the post list...
        Index("ix_posts_created_at_id", "created_at", "id"),
        # ...and the same order within one author's posts.
        Index("ix_posts_author_id_created_at_id", "author_id", "created_at", "id"),
        # Ids are never reused, on SQLite too (see User).
        {"sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    # The post's name in URLs (/posts/by-slug/{slug}), made from its title (app/posts/slugs.py).
    slug: Mapped[str] = mapped_column(String(SLUG_MAX_LENGTH), unique=True)
    title: Mapped[str] = mapped_column(String(TITLE_MAX_LENGTH))
    description: Mapped[str] = mapped_column(Text, default="", server_default="")
    content: Mapped[str] = mapped_column(Text)
    author_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))

    author: Mapped["User"] = relationship(back_populates="posts", lazy="raise")
    comments: Mapped[list["Comment"]] = relationship(
        back_populates="post", lazy="raise", passive_deletes=True
    )
