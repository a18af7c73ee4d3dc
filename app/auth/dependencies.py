"""Who is calling: CurrentAuthentication, CurrentUser and SuperUser, for any domain's routes."""

from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import OAuth2PasswordBearer

from app.auth import service as auth_service
from app.auth.service import Authentication
from app.core.db import SessionDep
from app.core.errors import NotAuthenticated, PermissionDenied
from app.core.security import PasswordHasher, TokenCodec
from app.models import User

# auto_error=False: a missing token is answered by our own 401 problem, like every other error.
bearer_token = OAuth2PasswordBearer(tokenUrl="/api/v1/auth/token", auto_error=False)


def get_token_codec(request: Request) -> TokenCodec:
    codec: TokenCodec = request.app.state.token_codec
    return codec


def get_password_hasher(request: Request) -> PasswordHasher:
    hasher: PasswordHasher = request.app.state.password_hasher
    return hasher


TokenCodecDep = Annotated[TokenCodec, Depends(get_token_codec)]
PasswordHasherDep = Annotated[PasswordHasher, Depends(get_password_hasher)]


async def get_authentication(
    token: Annotated[str | None, Depends(bearer_token)],
    session: SessionDep,
    codec: TokenCodecDep,
) -> Authentication:
    if not token:
        raise NotAuthenticated
    return await auth_service.authenticate(session, codec, token)


CurrentAuthentication = Annotated[Authentication, Depends(get_authentication)]


async def get_current_user(authentication: CurrentAuthentication) -> User:
    return authentication.user


CurrentUser = Annotated[User, Depends(get_current_user)]


async def get_superuser(user: CurrentUser) -> User:
    if not user.is_superuser:
        raise PermissionDenied("Only administrators may do this.")
    return user


SuperUser = Annotated[User, Depends(get_superuser)]
