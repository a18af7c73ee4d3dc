from datetime import datetime
from enum import StrEnum

from sqlalchemy import CheckConstraint, Enum, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from app.core.input import EMAIL_MAX_LENGTH
from app.models.base import Base, utcnow

MESSAGE_ID_MAX_LENGTH = 255
LAST_ERROR_MAX_LENGTH = 200


class OutboxStatus(StrEnum):
    PENDING = "pending"
    SENT = "sent"
    FAILED = "failed"


class OutboxMessage(Base):
    """One email Quill promised to send, written in the transaction that promised it.

    Rendered when queued, so whoever sends it needs nothing but this row. A dispatcher claims a
    pending message as a lease: `next_attempt_at` moves to the end of the claim and `claim_token`
    names the claimant, so a message whose dispatcher died is due again once the claim ends.
    """

    __tablename__ = "outbox_messages"
    __table_args__ = (
        # What dispatchers ask: the pending messages due first, and when the next one is due.
        Index("ix_outbox_messages_status_next_attempt_at", "status", "next_attempt_at"),
        # The sent messages past their retention.
        Index("ix_outbox_messages_status_sent_at", "status", "sent_at"),
        CheckConstraint("status IN ('pending', 'sent', 'failed')", name="status_is_known"),
        # Ids are never reused, on SQLite too (see User).
        {"sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    # The Message-ID header, the same on every attempt: a retry after an uncertain send can be
    # deduplicated downstream.
    message_id: Mapped[str] = mapped_column(String(MESSAGE_ID_MAX_LENGTH), unique=True)
    # The template it was rendered from (welcome, verify_email...): what the logs name.
    template: Mapped[str] = mapped_column(String(64))
    recipient: Mapped[str] = mapped_column(String(EMAIL_MAX_LENGTH))
    subject: Mapped[str] = mapped_column(Text)
    text_body: Mapped[str] = mapped_column(Text)
    html_body: Mapped[str] = mapped_column(Text)
    status: Mapped[OutboxStatus] = mapped_column(
        Enum(
            OutboxStatus,
            native_enum=False,
            length=16,
            values_callable=lambda statuses: [status.value for status in statuses],
        ),
        default=OutboxStatus.PENDING,
    )
    # Attempts begun, counted when claimed: a message that kills its dispatcher still runs out.
    attempts: Mapped[int] = mapped_column(default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(default=utcnow)
    claim_token: Mapped[str | None] = mapped_column(String(32))
    # The kind of the last failure (an exception class, an SMTP code), never its text.
    last_error: Mapped[str | None] = mapped_column(String(LAST_ERROR_MAX_LENGTH))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    sent_at: Mapped[datetime | None]
