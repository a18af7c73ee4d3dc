from datetime import datetime
from enum import StrEnum

from sqlalchemy import CheckConstraint, Enum, ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from app.core.input import EMAIL_MAX_LENGTH
from app.models.base import Base, utcnow

# A SHA-256 digest, in hex.
TOKEN_HASH_LENGTH = 64


class AccountTokenPurpose(StrEnum):
    VERIFY_EMAIL = "verify_email"
    RESET_PASSWORD = "reset_password"


class AccountToken(Base):
    """A token mailed in a link (verify an address, reset a password): single-use, for one
    purpose, until `expires_at`.

    Only its SHA-256 is stored: whoever reads this table cannot follow the links. `used_at` is
    set once it has been spent; a token that is voided (a newer reset link, a password or email
    change) is deleted.
    """

    __tablename__ = "account_tokens"
    __table_args__ = (
        # What voiding asks: the tokens of one user for one purpose.
        Index("ix_account_tokens_user_id_purpose", "user_id", "purpose"),
        CheckConstraint("purpose IN ('verify_email', 'reset_password')", name="purpose_is_known"),
        # Ids are never reused, on SQLite too (see User).
        {"sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    purpose: Mapped[AccountTokenPurpose] = mapped_column(
        Enum(
            AccountTokenPurpose,
            native_enum=False,
            length=16,
            values_callable=lambda purposes: [purpose.value for purpose in purposes],
        )
    )
    token_hash: Mapped[str] = mapped_column(String(TOKEN_HASH_LENGTH), unique=True)
    # The address the link was mailed to: a verification verifies this address and no other.
    email: Mapped[str] = mapped_column(String(EMAIL_MAX_LENGTH))
    expires_at: Mapped[datetime]
    used_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
