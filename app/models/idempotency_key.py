from datetime import datetime

from sqlalchemy import ForeignKey, Index, LargeBinary, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from app.models.base import Base, utcnow

IDEMPOTENCY_KEY_MAX_LENGTH = 255
# A SHA-256 digest, in hex.
FINGERPRINT_LENGTH = 64
CONTENT_TYPE_MAX_LENGTH = 255
LOCATION_MAX_LENGTH = 2048
CREATED_KIND_MAX_LENGTH = 16


class IdempotencyKey(Base):
    """A creating request sent with `Idempotency-Key`, and the answer it got: a retry with the
    same key gets that answer again instead of creating twice.

    The row is written in the transaction of the write it guards, so it exists exactly when the
    write committed; the unique (user_id, key) makes two requests with one key one write.
    """

    __tablename__ = "idempotency_keys"
    __table_args__ = (
        UniqueConstraint("user_id", "key", name="uq_idempotency_keys_user_id_key"),
        # What the purge of a user's expired keys asks.
        Index("ix_idempotency_keys_user_id_expires_at", "user_id", "expires_at"),
        {"sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    key: Mapped[str] = mapped_column(String(IDEMPOTENCY_KEY_MAX_LENGTH))
    # What was asked: the method, the path and the body, hashed. The same key with another
    # request is a client's mistake, never a retry.
    fingerprint: Mapped[str] = mapped_column(String(FINGERPRINT_LENGTH))
    status_code: Mapped[int]
    content_type: Mapped[str] = mapped_column(String(CONTENT_TYPE_MAX_LENGTH))
    location: Mapped[str | None] = mapped_column(String(LOCATION_MAX_LENGTH))
    body: Mapped[bytes] = mapped_column(LargeBinary)
    # What the request created ("post", "comment"), and that row while it exists: deleting it
    # empties the column, and a retry then learns the row is gone instead of being told, by a
    # replayed 201, that it exists.
    created_kind: Mapped[str | None] = mapped_column(String(CREATED_KIND_MAX_LENGTH))
    created_post_id: Mapped[int | None] = mapped_column(
        ForeignKey("posts.id", ondelete="SET NULL"), index=True
    )
    created_comment_id: Mapped[int | None] = mapped_column(
        ForeignKey("comments.id", ondelete="SET NULL"), index=True
    )
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime]
