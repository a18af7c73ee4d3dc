"""What Conduit's contract adds to the services: a token in every answer about the caller.

A Conduit client cannot refresh, so its token is a login of its own with one long-lived access
token (CONDUIT_TOKEN_TTL_SECONDS), made at registration and at each sign-in.
"""

from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from app.auth import service as auth_service
from app.auth.service import AccountMail, Authentication
from app.core.passwords import PasswordPolicy
from app.core.rate_limits import RequestLimits
from app.core.security import PasswordHasher, TokenCodec
from app.models import User
from app.users import service as users_service
from app.users.service import AccountChanges


@dataclass(frozen=True, slots=True)
class SignedInUser:
    """A user, and the token that signs them in: what Conduit calls a User."""

    user: User
    token: str


async def register(
    session: AsyncSession,
    hasher: PasswordHasher,
    policy: PasswordPolicy,
    codec: TokenCodec,
    mail: AccountMail,
    *,
    username: str,
    email: str,
    password: str,
    token_lifetime: timedelta,
) -> SignedInUser:
    """A new account (welcomed by mail, as on /api/v1), signed in at once."""
    user = await users_service.register(
        session, hasher, policy, mail, username=username, email=email, password=password
    )
    issued = auth_service.open_login_without_refresh(session, codec, user, lifetime=token_lifetime)
    return SignedInUser(user=user, token=issued.access_token)


async def login(
    session: AsyncSession,
    hasher: PasswordHasher,
    codec: TokenCodec,
    limits: RequestLimits,
    *,
    email: str,
    password: str,
    token_lifetime: timedelta,
) -> SignedInUser:
    """Sign in, limited exactly as /api/v1's sign-in is (the same per-account failures)."""
    issued = await auth_service.login_without_refresh(
        session,
        hasher,
        codec,
        limits,
        username_or_email=email,
        password=password,
        lifetime=token_lifetime,
    )
    return SignedInUser(user=issued.user, token=issued.access_token)


async def update_user(
    session: AsyncSession,
    hasher: PasswordHasher,
    policy: PasswordPolicy,
    mail: AccountMail,
    caller: Authentication,
    token: str,
    changes: AccountChanges,
) -> SignedInUser:
    """Conduit's PUT /api/user: no current password (see users_service's unconfirmed update).
    The caller's login goes on, so their token stays the one they hold."""
    user = await users_service.update_own_account_unconfirmed(
        session, hasher, policy, mail, caller, changes
    )
    return SignedInUser(user=user, token=token)
