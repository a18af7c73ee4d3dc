from sqlalchemy import ForeignKey, Index
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.models.base import Base
from app.models.tag import Tag


class PostTag(Base):
    """A post carries a tag, at `position` in the list its author gave (0 first)."""

    __tablename__ = "post_tags"
    # What "posts with this tag" and "tags in use" ask.
    __table_args__ = (Index("ix_post_tags_tag_id", "tag_id"),)

    post_id: Mapped[int] = mapped_column(
        ForeignKey("posts.id", ondelete="CASCADE"), primary_key=True
    )
    tag_id: Mapped[int] = mapped_column(ForeignKey("tags.id", ondelete="CASCADE"), primary_key=True)
    position: Mapped[int]

    tag: Mapped[Tag] = relationship(lazy="raise")
