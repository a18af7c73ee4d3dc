"""Signing in, refreshing and signing out, and the links mailed to verify an address and to
reset a password.

A login is a row; every token names it (`sid`). A mailed link carries a token of
account_tokens.py: single-use, for one purpose, expiring. Registration mails a welcome with a
verification link; an unverified account signs in and works as any other (`email_verified` is
recorded, not enforced).
"""

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Self

import structlog
from sqlalchemy.ext.asyncio import AsyncSession

from app.auth import account_tokens, repository
from app.auth.errors import (
    AccountTokenInvalid,
    EmailAlreadyVerified,
    InvalidCredentials,
    InvalidToken,
    RefreshTokenReused,
)
from app.core import security, security_log
from app.core.config import Settings
from app.core.db import outside_transaction
from app.core.errors import RateLimited
from app.core.ids import MAX_ROW_ID
from app.core.passwords import PasswordPolicy
from app.core.rate_limits import RequestLimits
from app.core.security import PasswordHasher, TokenCodec, TokenType
from app.core.security_log import SecurityEvent
from app.mail import service as mail_service
from app.models import AccountTokenPurpose, Login, RefreshToken, User

VERIFY_EMAIL, RESET_PASSWORD = AccountTokenPurpose.VERIFY_EMAIL, AccountTokenPurpose.RESET_PASSWORD

log = structlog.get_logger(__name__)


@dataclass(frozen=True, slots=True)
class IssuedTokens:
    """A new access and refresh token of one login."""

    access_token: str
    refresh_token: str
    issued_at: datetime
    access_expires_at: datetime

    @property
    def expires_in(self) -> int:
        """Seconds the access token lives."""
        return int((self.access_expires_at - self.issued_at).total_seconds())


@dataclass(frozen=True, slots=True)
class Authentication:
    """Who is calling, and through which login (so a password change can keep this one)."""

    user: User
    login_id: str


class LoginEndReason(StrEnum):
    LOGOUT = "logout"
    REFRESH_TOKEN_REUSED = "refresh_token_reused"
    PASSWORD_CHANGED = "password_changed"
    # Only where an address changes with no current password (Conduit's PUT /api/user).
    EMAIL_CHANGED = "email_changed"
    PASSWORD_RESET = "password_reset"
    DEACTIVATED = "deactivated"


@dataclass(frozen=True, slots=True)
class AccountMail:
    """What mailing a link takes: the composer, and how long each kind of link works."""

    composer: mail_service.MailComposer
    verify_ttl: timedelta
    reset_ttl: timedelta

    @classmethod
    def from_settings(cls, settings: Settings, composer: mail_service.MailComposer) -> Self:
        return cls(
            composer=composer,
            verify_ttl=timedelta(seconds=settings.VERIFY_TOKEN_TTL_SECONDS),
            reset_ttl=timedelta(seconds=settings.RESET_TOKEN_TTL_SECONDS),
        )

    @property
    def verify_hours(self) -> int:
        # Whole hours, rounded down: the message never promises more than the link keeps.
        return int(self.verify_ttl.total_seconds()) // 3600

    @property
    def reset_minutes(self) -> int:
        return int(self.reset_ttl.total_seconds()) // 60


@dataclass(frozen=True, slots=True)
class IssuedAccessToken:
    """The one token of a login that cannot be refreshed (a Conduit client's), and its user."""

    user: User
    access_token: str
    login_id: str
    expires_at: datetime


async def login(
    session: AsyncSession,
    hasher: PasswordHasher,
    codec: TokenCodec,
    limits: RequestLimits,
    *,
    username_or_email: str,
    password: str,
) -> IssuedTokens:
    """A new login, with an access and a refresh token; see `_verified_sign_in` for the rules."""
    user = await _verified_sign_in(
        session, hasher, limits, username_or_email=username_or_email, password=password
    )
    now = datetime.now(UTC)
    login_row = Login(
        id=uuid.uuid4().hex, user_id=user.id, created_at=now, expires_at=codec.login_expires_at(now)
    )
    session.add(login_row)
    tokens = _issue_tokens(
        session, codec, user_id=user.id, login_id=login_row.id, not_after=login_row.expires_at
    )
    log.info("auth.logged_in", user_id=user.id, login_id=login_row.id)
    return tokens


async def login_without_refresh(
    session: AsyncSession,
    hasher: PasswordHasher,
    codec: TokenCodec,
    limits: RequestLimits,
    *,
    username_or_email: str,
    password: str,
    lifetime: timedelta,
) -> IssuedAccessToken:
    """A new login whose one access token lives `lifetime`, for clients that cannot refresh;
    verified, and limited, exactly as `login` is."""
    user = await _verified_sign_in(
        session, hasher, limits, username_or_email=username_or_email, password=password
    )
    return open_login_without_refresh(session, codec, user, lifetime=lifetime)


def open_login_without_refresh(
    session: AsyncSession, codec: TokenCodec, user: User, *, lifetime: timedelta
) -> IssuedAccessToken:
    """A new login of `user` (signed in, or just registered) whose only token is one access token
    that lives `lifetime`, LOGIN_MAX_AGE_SECONDS at most. Nothing refreshes it; it ends as every
    login ends (a password change elsewhere, a reset, deactivation)."""
    now = datetime.now(UTC)
    login_row = Login(
        id=uuid.uuid4().hex,
        user_id=user.id,
        created_at=now,
        expires_at=min(now + lifetime, codec.login_expires_at(now)),
    )
    session.add(login_row)
    access = codec.issue(
        TokenType.ACCESS,
        user_id=user.id,
        session_id=login_row.id,
        not_after=login_row.expires_at,
        lifetime=lifetime,
    )
    log.info("auth.logged_in", user_id=user.id, login_id=login_row.id, refreshable=False)
    return IssuedAccessToken(
        user=user,
        access_token=access.token,
        login_id=login_row.id,
        expires_at=access.claims.expires_at,
    )


async def _verified_sign_in(
    session: AsyncSession,
    hasher: PasswordHasher,
    limits: RequestLimits,
    *,
    username_or_email: str,
    password: str,
) -> User:
    """The active user these credentials name, read afresh and locked; InvalidCredentials if none.

    Exactly one password verification per attempt, whoever asks, so timing tells nothing.
    It runs outside any transaction: read the user, verify, then sign in. Only failures
    spend the account's limit (RATE_LIMIT_LOGIN_ACCOUNT): each attempt takes one, and a sign-in
    forgives them. While the account has none left, every attempt is refused (429) before any
    hashing, the right password included.
    """
    user = await repository.get_user_by_username_or_email(session, username_or_email)
    account = _attempted_account(limits, user, username_or_email)
    failures = limits.rate_limits.login_account
    verified_hash = user.hashed_password if user else None
    async with outside_transaction(session):
        # Each attempt takes its failure before it is verified, in one atomic step: of attempts
        # that race, only as many as the account has failures left are ever verified.
        quota = await limits.count(failures, account)
        valid, new_hash = await hasher.verify(password, verified_hash)
        if user is not None and valid and user.is_active:
            # A sign-in is no guess: its attempt, and the failures before it, are forgiven. Not
            # so for a deactivated account: its headers would tell a right password from a 401.
            await limits.forgive(failures, account)
    if user is not None and valid and user.is_active:
        # The transaction ended for the hashing: the account may have been deleted, deactivated
        # or given a new password meanwhile. Read it again, locked, before signing it in.
        user = await repository.get_user_by_username_or_email(session, username_or_email, lock=True)
        valid = user is not None and user.hashed_password == verified_hash
    if user is None or not valid or not user.is_active:
        log.info("auth.login_failed", user_id=user.id if user else None)
        if quota is not None and quota.remaining == 0:
            # This failure took the account's last one: its sign-ins now wait.
            security_log.record(
                SecurityEvent.SIGN_IN_LOCKED,
                user_id=user.id if user else None,
                retry_after_seconds=quota.reset_seconds,
            )
        raise InvalidCredentials
    if new_hash is not None:
        user.hashed_password = new_hash
    return user


async def refresh(session: AsyncSession, codec: TokenCodec, refresh_token: str) -> IssuedTokens:
    claims = _decode(codec, refresh_token, TokenType.REFRESH)
    now = datetime.now(UTC)
    spent = await repository.spend_refresh_token(
        session, token_id=claims.token_id, login_id=claims.session_id, now=now
    )
    if not spent:
        if await repository.refresh_token_was_spent(
            session, token_id=claims.token_id, login_id=claims.session_id
        ):
            await repository.end_login(
                session,
                login_id=claims.session_id,
                reason=LoginEndReason.REFRESH_TOKEN_REUSED,
                now=now,
            )
            security_log.record_on_commit(
                session,
                SecurityEvent.REFRESH_TOKEN_REUSED,
                user_id=claims.user_id,
                login_id=claims.session_id,
            )
            raise RefreshTokenReused
        raise InvalidToken
    login_ends_at = await repository.get_active_login_expiry(
        session, user_id=claims.user_id, login_id=claims.session_id, now=now
    )
    if login_ends_at is None:
        raise InvalidToken
    return _issue_tokens(
        session, codec, user_id=claims.user_id, login_id=claims.session_id, not_after=login_ends_at
    )


async def logout(session: AsyncSession, codec: TokenCodec, refresh_token: str) -> None:
    """End the login the token belongs to. Ending an ended login is not an error."""
    claims = _decode(codec, refresh_token, TokenType.REFRESH)
    await repository.end_login(
        session, login_id=claims.session_id, reason=LoginEndReason.LOGOUT, now=datetime.now(UTC)
    )
    log.info("auth.logged_out", user_id=claims.user_id, login_id=claims.session_id)


async def authenticate(
    session: AsyncSession, codec: TokenCodec, access_token: str, *, for_update: bool = False
) -> Authentication:
    """The login behind an access token, with its user loaded; InvalidToken otherwise.

    A request that writes locks the user (`for_update`): were the account deleted meanwhile,
    the request would otherwise act for someone who no longer exists.
    """
    claims = _decode(codec, access_token, TokenType.ACCESS)
    user = await repository.get_user_of_active_login(
        session,
        user_id=claims.user_id,
        login_id=claims.session_id,
        now=datetime.now(UTC),
        lock=for_update,
    )
    if user is None:
        raise InvalidToken
    return Authentication(user=user, login_id=claims.session_id)


async def lock_caller_again(session: AsyncSession, caller: Authentication) -> User:
    """The caller's user read afresh and locked, after work outside the transaction (which
    released the lock taken at authentication); InvalidToken if the login or the user ended."""
    user = await repository.get_user_of_active_login(
        session, user_id=caller.user.id, login_id=caller.login_id, now=datetime.now(UTC), lock=True
    )
    if user is None:
        raise InvalidToken
    return user


async def end_logins(
    session: AsyncSession,
    user: User,
    reason: LoginEndReason,
    *,
    except_login_id: str | None = None,
) -> None:
    await repository.end_logins_of_user(
        session,
        user_id=user.id,
        reason=reason,
        now=datetime.now(UTC),
        except_login_id=except_login_id,
    )
    log.info("auth.logins_ended", user_id=user.id, reason=reason, kept=except_login_id)


async def queue_welcome(session: AsyncSession, mail: AccountMail, user: User) -> None:
    """The welcome of a new account, with a link that verifies its address."""
    await _queue_verification(session, mail, user, template="welcome")


async def request_email_verification(
    session: AsyncSession, mail: AccountMail, limits: RequestLimits, user: User
) -> None:
    """Mail a new verification link to the user's address (older links keep working); 409 if it
    is verified already. Over the mail limits, nothing is sent, and the caller is not told."""
    if user.email_verified:
        raise EmailAlreadyVerified
    if not await _may_mail(limits, user.email):
        log.info("auth.email_verification_limited", user_id=user.id)
        return
    await _queue_verification(session, mail, user, template="verify_email")


async def confirm_email(session: AsyncSession, token: str) -> None:
    """Spend a verification token: the address it was mailed to is verified, if it is still the
    account's (a link to an earlier address verifies nothing)."""
    row = await account_tokens.find_usable(session, token, VERIFY_EMAIL)
    user = await account_tokens.spend(session, row)
    if user.email != row.email:
        log.info("auth.account_token_rejected", purpose=VERIFY_EMAIL, reason="email_changed")
        raise AccountTokenInvalid
    user.email_verified = True
    await session.flush()
    log.info("auth.email_verified", user_id=user.id)


async def request_password_reset(
    session: AsyncSession, mail: AccountMail, limits: RequestLimits, *, email: str
) -> None:
    """Mail a reset link if an active account has this (normalized) address, voiding its older
    reset links. The caller learns nothing: whether the account exists or the mail limits are
    spent, the answer is the same, and the same work comes first (the limits, the lookup)."""
    allowed = await _may_mail(limits, email)
    user = await repository.get_active_user_by_email(session, email)
    log.info(
        "auth.password_reset_requested",
        user_id=user.id if user else None,
        limited=not allowed,
    )
    if user is not None and allowed:
        await _queue_password_reset(session, mail, user)


async def reset_password(
    session: AsyncSession,
    hasher: PasswordHasher,
    policy: PasswordPolicy,
    *,
    token: str,
    new_password: str,
) -> None:
    """Spend a reset token: the account gets the new password, every login of it ends (their
    refresh and access tokens stop working) and every other reset link stops working.

    The token is checked before hashing (a bad one costs no hash), and spent after, with no
    transaction held across the hashing.
    """
    policy.check_new(new_password, field="new_password")
    row = await account_tokens.find_usable(session, token, RESET_PASSWORD)
    async with outside_transaction(session):
        new_hash = await hasher.hash(new_password)
    user = await account_tokens.spend(session, row)
    user.hashed_password = new_hash
    await account_tokens.void(session, user, RESET_PASSWORD)
    await end_logins(session, user, LoginEndReason.PASSWORD_RESET)
    await session.flush()
    log.info("auth.password_reset", user_id=user.id)
    security_log.record_on_commit(session, SecurityEvent.PASSWORD_RESET, user_id=user.id)


async def password_changed(session: AsyncSession, user: User) -> None:
    """The password changed: the reset links mailed before stop working."""
    await account_tokens.void(session, user, RESET_PASSWORD)
    security_log.record_on_commit(session, SecurityEvent.PASSWORD_CHANGED, user_id=user.id)


async def email_changed(
    session: AsyncSession, mail: AccountMail, user: User, *, old_email: str
) -> None:
    """The account's address is now `user.email` (unverified). The verification links of the
    old address stop working, the new one is sent its own, and the old one a notice with a reset
    link, so that whoever holds it can take the account back."""
    await account_tokens.void(session, user, VERIFY_EMAIL)
    await _queue_verification(session, mail, user, template="verify_email")
    reset_token = await _new_reset_token(session, mail, user, email=old_email)
    await mail_service.queue(
        session,
        mail.composer,
        to=old_email,
        template="email_changed_notice",
        context={
            "username": user.username,
            "new_email": user.email,
            "reset_link": mail.composer.reset_password_link(reset_token),
            "reset_minutes": mail.reset_minutes,
        },
    )


async def _queue_verification(
    session: AsyncSession, mail: AccountMail, user: User, *, template: str
) -> None:
    token = await account_tokens.issue(
        session, user, VERIFY_EMAIL, email=user.email, ttl=mail.verify_ttl
    )
    await mail_service.queue(
        session,
        mail.composer,
        to=user.email,
        template=template,
        context={
            "username": user.username,
            "verify_link": mail.composer.verify_email_link(token),
            "verify_hours": mail.verify_hours,
        },
    )


async def _queue_password_reset(session: AsyncSession, mail: AccountMail, user: User) -> None:
    token = await _new_reset_token(session, mail, user, email=user.email)
    await mail_service.queue(
        session,
        mail.composer,
        to=user.email,
        template="reset_password",
        context={
            "username": user.username,
            "reset_link": mail.composer.reset_password_link(token),
            "reset_minutes": mail.reset_minutes,
        },
    )


async def _new_reset_token(
    session: AsyncSession, mail: AccountMail, user: User, *, email: str
) -> str:
    """A reset token mailed to `email`; the user's earlier reset links stop working."""
    await account_tokens.void(session, user, RESET_PASSWORD)
    return await account_tokens.issue(
        session, user, RESET_PASSWORD, email=email, ttl=mail.reset_ttl
    )


async def _may_mail(limits: RequestLimits, email: str) -> bool:
    """Count a request for mail against its client and against the address it would go to;
    False (send nothing) once either has none left.

    Only the client's count reaches the RateLimit-* headers: the address's is not the client's
    own, and would tell how often others asked for mail to it.
    """
    rate_limits = limits.rate_limits
    try:
        await limits.count(rate_limits.mail_client, limits.address)
    except RateLimited:
        return False
    if not rate_limits.enabled:
        return True
    quota = await rate_limits.mail_address.hit(rate_limits.pseudonym(email))
    return not quota.refused


def _attempted_account(limits: RequestLimits, user: User | None, username_or_email: str) -> str:
    """Whose failures a sign-in adds to: the account the name names (by username or email
    alike), else the name as it was looked up, under a pseudonym: people type passwords there."""
    if user is not None:
        return f"user:{user.id}"
    return f"name:{limits.rate_limits.pseudonym(repository.sign_in_name_key(username_or_email))}"


def _decode(codec: TokenCodec, token: str, token_type: TokenType) -> security.TokenClaims:
    try:
        claims = codec.decode(token, token_type)
    except security.InvalidToken as exc:
        log.info("auth.token_rejected", reason=str(exc), expected=token_type.value)
        raise InvalidToken from exc
    if not 1 <= claims.user_id <= MAX_ROW_ID:
        # Only a holder of the key could sign this; the database could not even look it up.
        raise InvalidToken
    return claims


def _issue_tokens(
    session: AsyncSession,
    codec: TokenCodec,
    *,
    user_id: int,
    login_id: str,
    not_after: datetime,
) -> IssuedTokens:
    """A new pair for the login; neither token outlives the login (`not_after`)."""
    access = codec.issue(
        TokenType.ACCESS, user_id=user_id, session_id=login_id, not_after=not_after
    )
    refresh_token = codec.issue(
        TokenType.REFRESH, user_id=user_id, session_id=login_id, not_after=not_after
    )
    session.add(
        RefreshToken(
            id=refresh_token.claims.token_id,
            login_id=login_id,
            expires_at=refresh_token.claims.expires_at,
        )
    )
    return IssuedTokens(
        access_token=access.token,
        refresh_token=refresh_token.token,
        issued_at=access.claims.issued_at,
        access_expires_at=access.claims.expires_at,
    )
