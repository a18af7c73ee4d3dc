from typing import Annotated

from fastapi import Depends

from app.auth.dependencies import OptionalUser
from app.core.db import SessionDep
from app.core.ids import UserIdPath
from app.models import User
from app.users import service as users_service


async def get_existing_user(user_id: UserIdPath, session: SessionDep) -> User:
    """Any account, active or not: for administrators' routes."""
    return await users_service.get(session, user_id)


async def get_visible_user(user_id: UserIdPath, viewer: OptionalUser, session: SessionDep) -> User:
    """A user the caller may see: 404 for a deactivated one, except to administrators."""
    return await users_service.get_visible(session, user_id, viewer=viewer)


ExistingUser = Annotated[User, Depends(get_existing_user)]
VisibleUser = Annotated[User, Depends(get_visible_user)]
