from datetime import datetime

from sqlalchemy import CheckConstraint, ForeignKey, Index
from sqlalchemy.orm import Mapped, mapped_column

from app.models.base import Base, utcnow


class Follow(Base):
    """`follower_id` follows `followee_id`: the followee's posts are in the follower's feed."""

    __tablename__ = "follows"
    __table_args__ = (
        # "Who follows this user", and the cascade when they are deleted.
        Index("ix_follows_followee_id", "followee_id"),
        CheckConstraint("follower_id <> followee_id", name="not_oneself"),
    )

    follower_id: Mapped[int] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    followee_id: Mapped[int] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
