from fastapi import APIRouter, Request, Response, status

from app.auth.dependencies import CurrentAuthentication, CurrentUser, PasswordHasherDep, SuperUser
from app.core.db import SessionDep
from app.core.errors import problem_responses
from app.core.ids import UserIdPath
from app.core.pagination import Page, PageDep
from app.models import User
from app.posts import service as posts_service
from app.posts.schemas import PostRead
from app.users import service as users_service
from app.users.dependencies import ExistingUser
from app.users.schemas import (
    AdminUserRead,
    AdminUserUpdate,
    PublicProfile,
    UserCreate,
    UserRead,
    UserUpdate,
)

router = APIRouter(prefix="/users", tags=["users"])


@router.post(
    "/",
    status_code=status.HTTP_201_CREATED,
    response_model=UserRead,
    responses=problem_responses(409),
)
async def register(
    data: UserCreate,
    session: SessionDep,
    hasher: PasswordHasherDep,
    request: Request,
    response: Response,
) -> User:
    user = await users_service.register(session, hasher, data)
    response.headers["Location"] = str(request.url_for("get_user", user_id=user.id))
    return user


@router.get("/", responses=problem_responses(401, 403))
async def list_users(_admin: SuperUser, page: PageDep, session: SessionDep) -> Page[AdminUserRead]:
    """Administrators only: every account, oldest first."""
    return await users_service.list_users(session, page)


@router.get("/me", response_model=UserRead, responses=problem_responses(401))
async def read_me(user: CurrentUser) -> User:
    return user


@router.patch("/me", response_model=UserRead, responses=problem_responses(401, 403, 409))
async def update_me(
    changes: UserUpdate,
    caller: CurrentAuthentication,
    session: SessionDep,
    hasher: PasswordHasherDep,
) -> User:
    """Changing the password or the email needs `current_password`.

    A new password signs out every other login of the account; this one goes on.
    """
    return await users_service.update_own_account(session, hasher, caller, changes)


@router.delete("/me", status_code=status.HTTP_204_NO_CONTENT, responses=problem_responses(401))
async def delete_me(user: CurrentUser, session: SessionDep) -> None:
    """Delete the account and everything it wrote."""
    await users_service.delete(session, user)


@router.get("/{user_id}", response_model=PublicProfile, responses=problem_responses(404))
async def get_user(user: ExistingUser) -> User:
    return user


@router.get("/{user_id}/posts", responses=problem_responses(404))
async def list_user_posts(user: ExistingUser, page: PageDep, session: SessionDep) -> Page[PostRead]:
    """The user's posts, newest first."""
    return await posts_service.list_newest_first(session, page, author_id=user.id)


@router.patch(
    "/{user_id}", response_model=AdminUserRead, responses=problem_responses(401, 403, 404)
)
async def administer_user(
    user_id: UserIdPath, changes: AdminUserUpdate, _admin: SuperUser, session: SessionDep
) -> User:
    """Administrators only: activate or deactivate (which signs the user out), promote, demote."""
    return await users_service.administer(session, user_id, changes)


@router.delete(
    "/{user_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=problem_responses(401, 403, 404),
)
async def delete_user(user_id: UserIdPath, _admin: SuperUser, session: SessionDep) -> None:
    """Administrators only: delete the account and everything it wrote."""
    await users_service.delete_by_id(session, user_id)
