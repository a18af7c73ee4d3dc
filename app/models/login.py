from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.models.base import Base, utcnow

if TYPE_CHECKING:
    from app.models.refresh_token import RefreshToken
    from app.models.user import User


class Login(Base):
    """One sign-in: its access and refresh tokens carry its id (the `sid` claim).

    Ending a login (logout, theft detection, password change, deactivation) sets `ended_at`,
    which invalidates every token of it at once; so does reaching `expires_at`.
    """

    __tablename__ = "logins"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    # LOGIN_MAX_AGE_SECONDS after the sign-in; no refresh moves it, no token outlives it.
    expires_at: Mapped[datetime]
    ended_at: Mapped[datetime | None]
    end_reason: Mapped[str | None] = mapped_column(String(32))

    user: Mapped["User"] = relationship(back_populates="logins", lazy="raise")
    refresh_tokens: Mapped[list["RefreshToken"]] = relationship(
        back_populates="login", lazy="raise", passive_deletes=True
    )
