from typing import Annotated

from fastapi import Depends

from app.auth.dependencies import OptionalUser
from app.core.db import SessionDep
from app.core.ids import UserIdPath
from app.models import User
from app.users import service as users_service


async def get_administered_user(user_id: UserIdPath, session: SessionDep) -> User:
    """Any account, active or not, locked for the request: for administrators' changes."""
    return await users_service.get_to_change(session, user_id)


async def get_visible_user(user_id: UserIdPath, viewer: OptionalUser, session: SessionDep) -> User:
    """A user the caller may see: 404 for a deactivated one, except to administrators."""
    return await users_service.get_visible(session, user_id, viewer=viewer)


AdministeredUser = Annotated[User, Depends(get_administered_user)]
VisibleUser = Annotated[User, Depends(get_visible_user)]
