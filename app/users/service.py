"""Accounts: sign-up, profile changes, and what administrators may do."""

import structlog
from sqlalchemy.ext.asyncio import AsyncSession

from app.auth import service as auth_service
from app.auth.service import Authentication, LoginEndReason
from app.core.pagination import Page, PageRequest
from app.core.security import PasswordHasher
from app.models import User
from app.users import repository
from app.users.errors import EmailTaken, UsernameTaken, UserNotFound, WrongCurrentPassword
from app.users.schemas import AdminUserRead, AdminUserUpdate, UserCreate, UserUpdate

log = structlog.get_logger(__name__)


def username_key(username: str) -> str:
    return username.lower()


async def register(
    session: AsyncSession, hasher: PasswordHasher, data: UserCreate, *, is_superuser: bool = False
) -> User:
    await _ensure_available(session, username=data.username, email=data.email)
    user = User(
        username=data.username,
        username_key=username_key(data.username),
        email=data.email,
        hashed_password=await hasher.hash(data.password),
        is_superuser=is_superuser,
    )
    session.add(user)
    await session.flush()
    log.info("user.registered", user_id=user.id, is_superuser=is_superuser)
    return user


async def get(session: AsyncSession, user_id: int) -> User:
    user = await repository.get_by_id(session, user_id)
    if user is None:
        raise UserNotFound
    return user


async def update_own_account(
    session: AsyncSession,
    hasher: PasswordHasher,
    caller: Authentication,
    changes: UserUpdate,
) -> User:
    """Change the caller's account. A new password ends every login but this one."""
    user = caller.user
    if changes.password is not None or changes.email is not None:
        # The schema has made sure current_password comes with either.
        valid, _ = await hasher.verify(changes.current_password or "", user.hashed_password)
        if not valid:
            raise WrongCurrentPassword
    fields = changes.model_dump(exclude_unset=True, exclude={"password", "current_password"})
    await _ensure_available(
        session, username=fields.get("username"), email=fields.get("email"), exclude_id=user.id
    )
    if "username" in fields:
        user.username_key = username_key(fields["username"])
    if fields.get("email", user.email) != user.email:
        user.email_verified = False
    for field, value in fields.items():
        setattr(user, field, value)
    if changes.password is not None:
        user.hashed_password = await hasher.hash(changes.password)
        await auth_service.end_logins(
            session, user, LoginEndReason.PASSWORD_CHANGED, except_login_id=caller.login_id
        )
    await session.flush()
    log.info("user.updated", user_id=user.id, fields=sorted(changes.model_fields_set))
    return user


async def delete(session: AsyncSession, user: User) -> None:
    await repository.delete_by_id(session, user.id)
    log.info("user.deleted", user_id=user.id)


async def list_users(session: AsyncSession, page: PageRequest) -> Page[AdminUserRead]:
    users = await repository.list_users(session, limit=page.limit, offset=page.offset)
    return Page[AdminUserRead](
        items=[AdminUserRead.model_validate(user) for user in users],
        total=await repository.count_users(session),
        limit=page.limit,
        offset=page.offset,
    )


async def administer(session: AsyncSession, user_id: int, changes: AdminUserUpdate) -> User:
    """Activate, deactivate, promote or demote. Deactivation ends every login at once."""
    user = await get(session, user_id)
    for field, value in changes.model_dump(exclude_unset=True).items():
        setattr(user, field, value)
    if changes.is_active is False:
        await auth_service.end_logins(session, user, LoginEndReason.DEACTIVATED)
    await session.flush()
    log.info("user.administered", user_id=user.id, changes=changes.model_dump(exclude_unset=True))
    return user


async def delete_by_id(session: AsyncSession, user_id: int) -> None:
    await delete(session, await get(session, user_id))


async def _ensure_available(
    session: AsyncSession,
    *,
    username: str | None,
    email: str | None,
    exclude_id: int | None = None,
) -> None:
    """409 for a taken username or email. The unique constraints still decide races (409 too)."""
    taken = await repository.find_taken(
        session,
        username_key=username_key(username) if username else None,
        email=email,
        exclude_id=exclude_id,
    )
    for other in taken:
        if username and other.username_key == username_key(username):
            raise UsernameTaken
    if taken:
        raise EmailTaken
