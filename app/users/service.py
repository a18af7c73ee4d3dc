"""Accounts: sign-up, profile changes, and what administrators may do.

A deactivated account is hidden from everyone but administrators, its posts too. Quill always
keeps one active administrator: the last one can be neither demoted, deactivated nor deleted.
The mail these changes send (a welcome, a verification, a notice) is queued in the same unit of
work: it goes only if the change is committed.
"""

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import structlog
from pydantic import MISSING
from sqlalchemy import Row
from sqlalchemy.ext.asyncio import AsyncSession

from app.auth import service as auth_service
from app.auth.service import AccountMail, Authentication, LoginEndReason
from app.core import security_log
from app.core.db import outside_transaction
from app.core.events import publish
from app.core.pagination import Page, PageRequest
from app.core.passwords import PasswordPolicy
from app.core.security import PasswordHasher
from app.core.security_log import SecurityEvent
from app.models import User
from app.models.user import username_key
from app.posts import service as posts_service
from app.users import repository
from app.users.errors import (
    CannotFollowYourself,
    EmailTaken,
    LastAdministrator,
    UsernameTaken,
    UserNotFound,
    WrongCurrentPassword,
)
from app.users.events import UserChanged, UserDeleted
from app.users.schemas import AdminUserUpdate, UserUpdate

log = structlog.get_logger(__name__)


@dataclass(frozen=True, slots=True)
class ProfileView:
    """A user's public profile, as a given viewer sees it."""

    id: int
    username: str
    bio: str | None
    image: str | None
    created_at: datetime
    following: bool  # the viewer follows this user; False for anonymous viewers


async def register(
    session: AsyncSession,
    hasher: PasswordHasher,
    policy: PasswordPolicy,
    mail: AccountMail,
    *,
    username: str,
    email: str,
    password: str,
    is_superuser: bool = False,
) -> User:
    """A new account, welcomed by mail with a link that verifies its address.

    The values are valid already (each surface's schema checks them); the email normalized.
    """
    policy.check_new(password, field="password")
    async with outside_transaction(session):
        hashed_password = await hasher.hash(password)
    await _ensure_available(session, username=username, email=email)
    user = User(
        username=username,
        username_key=username_key(username),
        email=email,
        hashed_password=hashed_password,
        is_superuser=is_superuser,
    )
    session.add(user)
    await session.flush()
    await auth_service.queue_welcome(session, mail, user)
    log.info("user.registered", user_id=user.id, is_superuser=is_superuser)
    return user


async def get(session: AsyncSession, user_id: int) -> User:
    user = await repository.get_by_id(session, user_id)
    if user is None:
        raise UserNotFound
    return user


async def get_to_change(session: AsyncSession, user_id: int) -> User:
    """The user, locked until the unit of work ends: changes to it run one after the other."""
    user = await repository.get_by_id_for_update(session, user_id)
    if user is None:
        raise UserNotFound
    return user


async def get_visible(session: AsyncSession, user_id: int, *, viewer: User | None) -> User:
    user = await get(session, user_id)
    if not user.is_active and not (viewer is not None and viewer.is_superuser):
        raise UserNotFound
    return user


@dataclass(frozen=True, slots=True)
class AccountChanges:
    """Changes an account's owner makes; MISSING leaves a field as it is, and None clears the
    bio or the image. The values are valid already (the email normalized)."""

    username: str | MISSING = MISSING
    email: str | MISSING = MISSING
    bio: str | MISSING | None = MISSING
    image: str | MISSING | None = MISSING
    password: str | MISSING = MISSING


async def update_own_account(
    session: AsyncSession,
    hasher: PasswordHasher,
    policy: PasswordPolicy,
    mail: AccountMail,
    caller: Authentication,
    changes: UserUpdate,
) -> User:
    """Change the caller's account. A new password ends every login but this one, and voids the
    reset links mailed before. A new email address is in force at once, unverified: it is sent
    a verification link, and the old address a notice that tells how to take the account back.
    """
    user = caller.user
    new_hash = None
    if changes.password is not MISSING:
        policy.check_new(changes.password, field="password")
    if changes.password is not MISSING or changes.email is not MISSING:
        verified_hash = user.hashed_password
        async with outside_transaction(session):
            # The schema has made sure current_password comes with either.
            valid, _ = await hasher.verify(str(changes.current_password), verified_hash)
            if not valid:
                raise WrongCurrentPassword
            if changes.password is not MISSING:
                new_hash = await hasher.hash(changes.password)
        # The account may have been deleted, or given another password, while we hashed.
        user = await auth_service.lock_caller_again(session, caller)
        if user.hashed_password != verified_hash:
            raise WrongCurrentPassword
    fields = changes.model_dump(exclude_unset=True, exclude={"password", "current_password"})
    await _apply_changes(session, mail, caller, user, fields, new_hash=new_hash)
    log.info("user.updated", user_id=user.id, fields=sorted(changes.model_fields_set))
    return user


async def update_own_account_unconfirmed(
    session: AsyncSession,
    hasher: PasswordHasher,
    policy: PasswordPolicy,
    mail: AccountMail,
    caller: Authentication,
    changes: AccountChanges,
) -> User:
    """Change the caller's account on the strength of the token alone, with no current password
    (the Conduit contract has none). A new password or email address is what turns a stolen
    token into the account, so either ends every login but this one; a new address is sent a
    verification link, and the old one a notice that tells how to take the account back.
    """
    user = caller.user
    new_hash = None
    if changes.password is not MISSING:
        policy.check_new(changes.password, field="password")
        async with outside_transaction(session):
            new_hash = await hasher.hash(changes.password)
        # The account may have been deleted, or its login ended, while we hashed.
        user = await auth_service.lock_caller_again(session, caller)
    fields = {
        name: value
        for name in ("username", "email", "bio", "image")
        if (value := getattr(changes, name)) is not MISSING
    }
    email_changes = fields.get("email", user.email) != user.email
    await _apply_changes(session, mail, caller, user, fields, new_hash=new_hash)
    if email_changes and new_hash is None:
        await auth_service.end_logins(
            session, user, LoginEndReason.EMAIL_CHANGED, except_login_id=caller.login_id
        )
    changed = sorted([*fields, *(["password"] if new_hash else [])])
    log.info("user.updated", user_id=user.id, fields=changed, confirmed=False)
    return user


async def _apply_changes(
    session: AsyncSession,
    mail: AccountMail,
    caller: Authentication,
    user: User,
    fields: dict[str, Any],
    *,
    new_hash: str | None,
) -> None:
    """Set the checked `fields` (and the password hashed as `new_hash`) on the caller's `user`."""
    await _ensure_available(
        session, username=fields.get("username"), email=fields.get("email"), exclude_id=user.id
    )
    old_key = user.username_key
    if "username" in fields:
        user.username_key = username_key(fields["username"])
    old_email = user.email
    email_changes = fields.get("email", old_email) != old_email
    if email_changes:
        user.email_verified = False
    for field, value in fields.items():
        setattr(user, field, value)
    if new_hash is not None:
        user.hashed_password = new_hash
        await auth_service.end_logins(
            session, user, LoginEndReason.PASSWORD_CHANGED, except_login_id=caller.login_id
        )
        await auth_service.password_changed(session, user)
    await session.flush()
    # Only after a new password voided the reset links: the notice's must survive a change of both.
    if email_changes:
        await auth_service.email_changed(session, mail, user, old_email=old_email)
    usernames = tuple(dict.fromkeys((old_key, user.username_key)))
    publish(session, UserChanged(user_id=user.id, usernames=usernames))


async def delete(session: AsyncSession, user: User) -> None:
    """Delete the account; the database deletes its posts, which the event names."""
    await _ensure_not_last_administrator(session, user)
    posts = await posts_service.ids_and_slugs_by_author(session, user.id)
    await repository.delete_by_id(session, user.id)
    deleted = UserDeleted(
        user_id=user.id,
        post_ids=tuple(post_id for post_id, _slug in posts),
        post_slugs=tuple(slug for _post_id, slug in posts),
        username=user.username_key,
    )
    publish(session, deleted)
    log.info("user.deleted", user_id=user.id, posts_deleted=len(posts))


async def list_users(session: AsyncSession, page: PageRequest) -> Page[User]:
    return await repository.list_oldest_first(session, page)


async def administer(
    session: AsyncSession, user: User, changes: AdminUserUpdate, *, by: User
) -> User:
    """Activate, deactivate, promote or demote. Deactivation ends every login at once."""
    if changes.is_active is False or changes.is_superuser is False:
        await _ensure_not_last_administrator(session, user)
    fields = changes.model_dump(exclude_unset=True)
    if "is_superuser" in fields and fields["is_superuser"] != user.is_superuser:
        security_log.record_on_commit(
            session,
            SecurityEvent.ROLE_CHANGED,
            user_id=user.id,
            by_user_id=by.id,
            is_superuser=fields["is_superuser"],
        )
    if "is_active" in fields and fields["is_active"] != user.is_active:
        event = (
            SecurityEvent.ACCOUNT_ACTIVATED
            if fields["is_active"]
            else SecurityEvent.ACCOUNT_DEACTIVATED
        )
        security_log.record_on_commit(session, event, user_id=user.id, by_user_id=by.id)
    for field, value in fields.items():
        setattr(user, field, value)
    if changes.is_active is False:
        await auth_service.end_logins(session, user, LoginEndReason.DEACTIVATED)
    await session.flush()
    publish(session, UserChanged(user_id=user.id, usernames=(user.username_key,)))
    log.info("user.administered", user_id=user.id, changes=fields)
    return user


def _sees_hidden(viewer: User | None) -> bool:
    return viewer is not None and viewer.is_superuser


def _viewer_id(viewer: User | None) -> int | None:
    return None if viewer is None else viewer.id


def _profile(row: Row[*tuple[Any, ...]] | None, viewer: User | None) -> ProfileView:
    """The profile of a row, if the viewer may see it: UserNotFound for a deactivated user,
    except to administrators."""
    if row is None or not (row.is_active or _sees_hidden(viewer)):
        raise UserNotFound
    return ProfileView(
        id=row.id,
        username=row.username,
        bio=row.bio,
        image=row.image,
        created_at=row.created_at,
        following=bool(row.following),
    )


async def get_profile(session: AsyncSession, user_id: int, *, viewer: User | None) -> ProfileView:
    row = await repository.profile_by_id(session, user_id, viewer_id=_viewer_id(viewer))
    return _profile(row, viewer)


async def get_profile_by_username(
    session: AsyncSession, username: str, *, viewer: User | None
) -> ProfileView:
    """By username, whatever its case."""
    row = await repository.profile_by_key(
        session, username_key(username), viewer_id=_viewer_id(viewer)
    )
    return _profile(row, viewer)


async def _followee_id(
    session: AsyncSession, follower: User, user_id: int | None, username: str | None
) -> int:
    """The id of a user `follower` may see, kept from deletion until the unit of work ends."""
    if (user_id is None) == (username is None):
        raise TypeError("give exactly one of user_id and username")
    found = await repository.find_for_share(
        session, user_id=user_id, username_key=None if username is None else username_key(username)
    )
    if found is None or not (found[1] or _sees_hidden(follower)):
        raise UserNotFound
    return found[0]


async def follow(
    session: AsyncSession,
    follower: User,
    *,
    user_id: int | None = None,
    username: str | None = None,
) -> ProfileView:
    """Idempotent: following a followed user changes nothing. UserNotFound, then
    CannotFollowYourself.

    No cached read changes: only anonymous answers are cached, and they follow nobody.
    """
    followee_id = await _followee_id(session, follower, user_id, username)
    if followee_id == follower.id:
        raise CannotFollowYourself
    await repository.add_follow(session, follower_id=follower.id, followee_id=followee_id)
    log.info("user.followed", follower_id=follower.id, followee_id=followee_id)
    return await get_profile(session, followee_id, viewer=follower)


async def unfollow(
    session: AsyncSession,
    follower: User,
    *,
    user_id: int | None = None,
    username: str | None = None,
) -> ProfileView:
    """Idempotent: unfollowing a user not followed (oneself included) changes nothing."""
    followee_id = await _followee_id(session, follower, user_id, username)
    await repository.remove_follow(session, follower_id=follower.id, followee_id=followee_id)
    log.info("user.unfollowed", follower_id=follower.id, followee_id=followee_id)
    return await get_profile(session, followee_id, viewer=follower)


async def _ensure_not_last_administrator(session: AsyncSession, user: User) -> None:
    """409 if `user` is the only active administrator (their demotion, deactivation or
    deletion would leave nobody able to administer)."""
    if not (user.is_superuser and user.is_active):
        return
    if await repository.lock_active_superuser_ids(session) == [user.id]:
        raise LastAdministrator


async def _ensure_available(
    session: AsyncSession,
    *,
    username: str | None,
    email: str | None,
    exclude_id: int | None = None,
) -> None:
    """409 for a taken username or email; in a race, the unique constraints answer the same."""
    key = username_key(username) if username else None
    taken = await repository.find_taken(
        session, username_key=key, email=email, exclude_id=exclude_id
    )
    if any(other.username_key == key for other in taken):
        raise UsernameTaken
    if taken:
        raise EmailTaken
