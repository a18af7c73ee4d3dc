from typing import Annotated

from fastapi import Depends

from app.auth.dependencies import OptionalUser
from app.core.db import SessionDep
from app.core.ids import UserIdPath
from app.core.rate_limits import RequestLimitsDep
from app.models import User
from app.users import service as users_service


async def get_administered_user(user_id: UserIdPath, session: SessionDep) -> User:
    """Any account, active or not, locked for the request: for administrators' changes."""
    return await users_service.get_to_change(session, user_id)


async def get_visible_user(user_id: UserIdPath, viewer: OptionalUser, session: SessionDep) -> User:
    """A user the caller may see: 404 for a deactivated one, except to administrators."""
    return await users_service.get_visible(session, user_id, viewer=viewer)


async def count_sign_up(limits: RequestLimitsDep) -> None:
    """Every sign-up counts against its address (RATE_LIMIT_REGISTER_ADDRESS): 429 once it has
    none left, 503 when the shared limit cannot be consulted."""
    await limits.count(limits.rate_limits.register_address, limits.address)


AdministeredUser = Annotated[User, Depends(get_administered_user)]
VisibleUser = Annotated[User, Depends(get_visible_user)]
