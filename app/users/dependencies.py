from typing import Annotated

from fastapi import Depends

from app.core.db import SessionDep
from app.core.ids import UserIdPath
from app.models import User
from app.users import service as users_service


async def get_existing_user(user_id: UserIdPath, session: SessionDep) -> User:
    return await users_service.get(session, user_id)


ExistingUser = Annotated[User, Depends(get_existing_user)]
