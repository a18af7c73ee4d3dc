from datetime import datetime

from sqlalchemy import ColumnElement, and_, delete, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.models import AccountToken, AccountTokenPurpose, Login, RefreshToken, User
from app.models.user import username_key


def sign_in_name_key(name: str) -> str:
    """What a sign-in name (a username or an email) is looked up as."""
    # Emails are stored lowercased, so the username's key finds them too.
    return username_key(name.strip())


async def get_user_by_username_or_email(
    session: AsyncSession, name: str, *, lock: bool = False
) -> User | None:
    """`lock` reads the row afresh and locks it until the transaction ends."""
    key = sign_in_name_key(name)
    statement = select(User).where(or_(User.username_key == key, User.email == key))
    if lock:
        statement = statement.with_for_update().execution_options(populate_existing=True)
    return await session.scalar(statement)


def _active_login_of(*, user_id: int, login_id: str, now: datetime) -> ColumnElement[bool]:
    return and_(
        User.id == user_id,
        User.is_active.is_(True),
        Login.id == login_id,
        Login.ended_at.is_(None),
        Login.expires_at > now,
    )


async def get_user_of_active_login(
    session: AsyncSession, *, user_id: int, login_id: str, now: datetime, lock: bool
) -> User | None:
    """The user, if active and still signed in through that login: one query per request.

    `lock` reads the user's row afresh and locks it until the transaction ends, so a request that
    changes things on the user's behalf and a deletion of the user run one after the other.
    """
    statement = (
        select(User)
        .join(Login, Login.user_id == User.id)
        .where(_active_login_of(user_id=user_id, login_id=login_id, now=now))
    )
    if lock:
        statement = statement.with_for_update(of=User).execution_options(populate_existing=True)
    return await session.scalar(statement)


async def get_active_login_expiry(
    session: AsyncSession, *, user_id: int, login_id: str, now: datetime
) -> datetime | None:
    """When the login ends, if it and its user are still active."""
    statement = (
        select(Login.expires_at)
        .join(User, Login.user_id == User.id)
        .where(_active_login_of(user_id=user_id, login_id=login_id, now=now))
    )
    return await session.scalar(statement)


async def spend_refresh_token(
    session: AsyncSession, *, token_id: str, login_id: str, now: datetime
) -> bool:
    """Mark the token spent if nobody has: one conditional UPDATE, so one of two racers wins."""
    statement = (
        update(RefreshToken)
        .where(
            RefreshToken.id == token_id,
            RefreshToken.login_id == login_id,
            RefreshToken.spent_at.is_(None),
            RefreshToken.expires_at > now,
        )
        .values(spent_at=now)
        .execution_options(synchronize_session=False)
    )
    result = await session.execute(statement)
    return bool(result.rowcount)  # type: ignore[attr-defined]


async def refresh_token_was_spent(session: AsyncSession, *, token_id: str, login_id: str) -> bool:
    statement = select(RefreshToken.id).where(
        RefreshToken.id == token_id,
        RefreshToken.login_id == login_id,
        RefreshToken.spent_at.is_not(None),
    )
    return await session.scalar(statement) is not None


async def end_login(session: AsyncSession, *, login_id: str, reason: str, now: datetime) -> None:
    statement = (
        update(Login)
        .where(Login.id == login_id, Login.ended_at.is_(None))
        .values(ended_at=now, end_reason=reason)
        .execution_options(synchronize_session=False)
    )
    await session.execute(statement)


async def end_logins_of_user(
    session: AsyncSession,
    *,
    user_id: int,
    reason: str,
    now: datetime,
    except_login_id: str | None = None,
) -> None:
    statement = (
        update(Login)
        .where(Login.user_id == user_id, Login.ended_at.is_(None))
        .values(ended_at=now, end_reason=reason)
        .execution_options(synchronize_session=False)
    )
    if except_login_id is not None:
        statement = statement.where(Login.id != except_login_id)
    await session.execute(statement)


async def get_active_user_by_email(session: AsyncSession, email: str) -> User | None:
    """The active account of that (normalized) address, read afresh and locked until the
    transaction ends: one request at a time changes its links."""
    statement = (
        select(User)
        .where(User.email == email, User.is_active.is_(True))
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    return await session.scalar(statement)


async def get_user_for_update(session: AsyncSession, user_id: int) -> User | None:
    """The user, read afresh and locked until the transaction ends."""
    statement = (
        select(User)
        .where(User.id == user_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    return await session.scalar(statement)


async def get_unspent_account_token(
    session: AsyncSession, *, token_hash: str, purpose: AccountTokenPurpose
) -> AccountToken | None:
    """The token of that hash and purpose, if it has not been spent (expired or not)."""
    statement = select(AccountToken).where(
        AccountToken.token_hash == token_hash,
        AccountToken.purpose == purpose,
        AccountToken.used_at.is_(None),
    )
    return await session.scalar(statement)


async def spend_account_token(session: AsyncSession, *, token_id: int, now: datetime) -> bool:
    """Mark the token spent if it is still usable: one conditional UPDATE, so of two requests
    with one token, one spends it."""
    statement = (
        update(AccountToken)
        .where(
            AccountToken.id == token_id,
            AccountToken.used_at.is_(None),
            AccountToken.expires_at > now,
        )
        .values(used_at=now)
        .execution_options(synchronize_session=False)
    )
    result = await session.execute(statement)
    return bool(result.rowcount)  # type: ignore[attr-defined]


async def delete_account_tokens(
    session: AsyncSession, *, user_id: int, purpose: AccountTokenPurpose
) -> None:
    """Void every token of the user for that purpose: their links stop working."""
    statement = (
        delete(AccountToken)
        .where(AccountToken.user_id == user_id, AccountToken.purpose == purpose)
        .execution_options(synchronize_session=False)
    )
    await session.execute(statement)


async def delete_finished_account_tokens(
    session: AsyncSession, *, user_id: int, now: datetime
) -> None:
    """Forget the user's tokens that can never work again (spent or expired), so that a user's
    rows are only the links still outstanding."""
    statement = (
        delete(AccountToken)
        .where(
            AccountToken.user_id == user_id,
            or_(AccountToken.used_at.is_not(None), AccountToken.expires_at <= now),
        )
        .execution_options(synchronize_session=False)
    )
    await session.execute(statement)
