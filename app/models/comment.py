from typing import TYPE_CHECKING

from sqlalchemy import ForeignKey, Index, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.models.base import Base, Timestamped

if TYPE_CHECKING:
    from app.models.post import Post
    from app.models.user import User

COMMENT_MAX_LENGTH = 10_000


class Comment(Timestamped, Base):
    __tablename__ = "comments"
    __table_args__ = (
        # A post's comments, oldest first, with id as the tie-breaker.
        Index("ix_comments_post_id_created_at_id", "post_id", "created_at", "id"),
        # What deleting a user cascades through.
        Index("ix_comments_author_id", "author_id"),
        # Ids are never reused, on SQLite too (see User): a deleted comment's URL stays dead.
        {"sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    post_id: Mapped[int] = mapped_column(ForeignKey("posts.id", ondelete="CASCADE"))
    author_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    body: Mapped[str] = mapped_column(Text)

    post: Mapped["Post"] = relationship(back_populates="comments", lazy="raise")
    author: Mapped["User"] = relationship(lazy="raise")
