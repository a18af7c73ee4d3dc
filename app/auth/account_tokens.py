"""The tokens of mailed links: issued for one purpose, stored by their SHA-256 only, spent once.

A token is `secrets.token_urlsafe(32)`: 256 random bits as 43 characters of the URL-safe
alphabet, exactly what the link carries after `?token=` and what the confirm endpoints take.
256 random bits need no slow hash: nobody can guess one, so a plain SHA-256 keeps a reader of
the table from following the links.
"""

import hashlib
import re
import secrets
from datetime import UTC, datetime, timedelta

import structlog
from sqlalchemy.ext.asyncio import AsyncSession

from app.auth import repository
from app.auth.errors import AccountTokenExpired, AccountTokenInvalid
from app.models import AccountToken, AccountTokenPurpose, User

log = structlog.get_logger(__name__)

TOKEN_BYTES = 32
_TOKEN_SHAPE = re.compile(r"[A-Za-z0-9_-]{43}")


def token_hash(token: str) -> str | None:
    """What is stored of `token`; None for text that no issued token could be."""
    if _TOKEN_SHAPE.fullmatch(token) is None:
        return None
    return hashlib.sha256(token.encode("ascii")).hexdigest()


async def issue(
    session: AsyncSession,
    user: User,
    purpose: AccountTokenPurpose,
    *,
    email: str,
    ttl: timedelta,
) -> str:
    """A new token for `user`, mailed to `email`, usable for `ttl`: the token itself, for the
    link (it is not kept anywhere)."""
    now = datetime.now(UTC)
    await repository.delete_finished_account_tokens(session, user_id=user.id, now=now)
    token = secrets.token_urlsafe(TOKEN_BYTES)
    stored = token_hash(token)
    assert stored is not None  # token_urlsafe(32) has the shape
    session.add(
        AccountToken(
            user_id=user.id,
            purpose=purpose,
            token_hash=stored,
            email=email,
            expires_at=now + ttl,
            created_at=now,
        )
    )
    await session.flush()
    return token


async def find_usable(
    session: AsyncSession, token: str, purpose: AccountTokenPurpose
) -> AccountToken:
    """The unspent, unexpired token of that purpose; AccountTokenExpired or AccountTokenInvalid
    otherwise. Nothing is locked or changed: see `spend`."""
    stored = token_hash(token)
    row = (
        await repository.get_unspent_account_token(session, token_hash=stored, purpose=purpose)
        if stored is not None
        else None
    )
    if row is None:
        log.info("auth.account_token_rejected", purpose=purpose, reason="unknown")
        raise AccountTokenInvalid
    if row.expires_at <= datetime.now(UTC):
        log.info("auth.account_token_rejected", purpose=purpose, reason="expired")
        raise AccountTokenExpired
    return row


async def spend(session: AsyncSession, row: AccountToken) -> User:
    """Spend the token `find_usable` found; its user, locked, if that account is active.

    The user is locked first, as every change of an account does, and the token is then spent
    only if it still can be: meanwhile another request may have spent it, a newer link or a
    password change voided it, or it may have expired.
    """
    user = await repository.get_user_for_update(session, row.user_id)
    spent = await repository.spend_account_token(session, token_id=row.id, now=datetime.now(UTC))
    if not spent or user is None or not user.is_active:
        log.info("auth.account_token_rejected", purpose=row.purpose, reason="not_spendable")
        raise AccountTokenInvalid
    return user


async def void(session: AsyncSession, user: User, purpose: AccountTokenPurpose) -> None:
    await repository.delete_account_tokens(session, user_id=user.id, purpose=purpose)
