from fastapi import APIRouter, Depends, Response, status

from app.auth.dependencies import (
    OPTIONAL_AUTHENTICATION,
    AccountMailDep,
    CurrentAuthentication,
    CurrentUser,
    OptionalUser,
    PasswordHasherDep,
    PasswordPolicyDep,
    SuperUser,
)
from app.core.cache_control import NO_STORE, VARY_AUTHORIZATION
from app.core.db import SessionDep
from app.core.ids import UserIdPath
from app.core.links import LinksDep
from app.core.pagination import Page, PageDep, PageRead
from app.core.paths import USERS_PREFIX
from app.core.problem_details import problem_responses
from app.models import User
from app.users import service as users_service
from app.users.dependencies import AdministeredUser, count_sign_up
from app.users.schemas import (
    AdminUserRead,
    AdminUserUpdate,
    PublicProfile,
    UserCreate,
    UserRead,
    UserUpdate,
)
from app.users.service import ProfileView

router = APIRouter(prefix=USERS_PREFIX, tags=["users"])

# The stateful fuzzer, and any client, can follow a new account to its public pages.
_USER_LINKS = {
    name: {"operationId": name, "parameters": {"user_id": "$response.body#/id"}}
    for name in ("get_user", "list_user_posts", "follow_user", "unfollow_user")
}


@router.post(
    "/",
    status_code=status.HTTP_201_CREATED,
    response_model=UserRead,
    responses={**problem_responses(409), 201: {"links": _USER_LINKS}},
    dependencies=[NO_STORE, Depends(count_sign_up)],
)
async def register(
    data: UserCreate,
    session: SessionDep,
    hasher: PasswordHasherDep,
    policy: PasswordPolicyDep,
    mail: AccountMailDep,
    links: LinksDep,
    response: Response,
) -> User:
    """Sign up. The account works at once; a welcome with a link that verifies the address is
    mailed to it (`email_verified` stays false until the link is followed). With
    PASSWORD_REJECT_COMMON, a common password is a 422 (`password_too_common`)."""
    user = await users_service.register(
        session,
        hasher,
        policy,
        mail,
        username=data.username,
        email=data.email,
        password=data.password,
    )
    response.headers["Location"] = links.url_for("get_user", user_id=user.id)
    return user


@router.get(
    "/",
    response_model=PageRead[AdminUserRead],
    responses=problem_responses(401, 403),
    dependencies=[NO_STORE, VARY_AUTHORIZATION],
)
async def list_users(_admin: SuperUser, page: PageDep, session: SessionDep) -> Page[User]:
    """Administrators only: every account, oldest first."""
    return await users_service.list_users(session, page)


@router.get(
    "/me",
    response_model=UserRead,
    responses=problem_responses(401),
    dependencies=[NO_STORE, VARY_AUTHORIZATION],
)
async def read_me(user: CurrentUser) -> User:
    return user


@router.patch(
    "/me",
    response_model=UserRead,
    responses=problem_responses(401, 403, 409),
    dependencies=[NO_STORE],
)
async def update_me(
    changes: UserUpdate,
    caller: CurrentAuthentication,
    session: SessionDep,
    hasher: PasswordHasherDep,
    policy: PasswordPolicyDep,
    mail: AccountMailDep,
) -> User:
    """Changing the password or the email needs `current_password`.

    A new password signs out every other login of the account; this one goes on. A new email
    is in force at once with `email_verified` false: it is mailed a verification link, and the
    old address a notice with a link to reset the password.
    """
    return await users_service.update_own_account(session, hasher, policy, mail, caller, changes)


@router.delete("/me", status_code=status.HTTP_204_NO_CONTENT, responses=problem_responses(401, 409))
async def delete_me(user: CurrentUser, session: SessionDep) -> None:
    """Delete the account and everything it wrote (not the last administrator's: 409)."""
    await users_service.delete(session, user)


@router.get(
    "/{user_id}",
    response_model=PublicProfile,
    responses=problem_responses(401, 404),
    openapi_extra=OPTIONAL_AUTHENTICATION,
    dependencies=[VARY_AUTHORIZATION],
)
async def get_user(user_id: UserIdPath, viewer: OptionalUser, session: SessionDep) -> ProfileView:
    return await users_service.get_profile(session, user_id, viewer=viewer)


@router.put(
    "/{user_id}/follow",
    response_model=PublicProfile,
    responses=problem_responses(401, 404, 409),
)
async def follow_user(user_id: UserIdPath, user: CurrentUser, session: SessionDep) -> ProfileView:
    """Idempotent: the profile, followed by the caller; their posts are in the caller's feed.
    Nobody follows themselves (409)."""
    return await users_service.follow(session, user, user_id=user_id)


@router.delete(
    "/{user_id}/follow", response_model=PublicProfile, responses=problem_responses(401, 404)
)
async def unfollow_user(user_id: UserIdPath, user: CurrentUser, session: SessionDep) -> ProfileView:
    """Idempotent: the profile, not followed by the caller."""
    return await users_service.unfollow(session, user, user_id=user_id)


@router.patch(
    "/{user_id}",
    response_model=AdminUserRead,
    responses=problem_responses(401, 403, 404, 409),
    dependencies=[NO_STORE],
)
async def administer_user(
    changes: AdminUserUpdate, admin: SuperUser, user: AdministeredUser, session: SessionDep
) -> User:
    """Administrators only: activate or deactivate (which signs the user out), promote, demote.

    The last active administrator can be neither deactivated nor demoted (409).
    """
    return await users_service.administer(session, user, changes, by=admin)


@router.delete(
    "/{user_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=problem_responses(401, 403, 404, 409),
)
async def delete_user(_admin: SuperUser, user: AdministeredUser, session: SessionDep) -> None:
    """Administrators only: delete the account and everything it wrote."""
    await users_service.delete(session, user)
