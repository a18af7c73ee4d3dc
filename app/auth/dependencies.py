"""Who is calling: one chain from the request's access token to OptionalUser, CurrentUser and
SuperUser, for the routes of any domain and any surface.

The surface decides only how the token is carried (`Authorization: Bearer <token>` on /api/v1,
`Token <token>` or `Bearer <token>` on Conduit's /api);
everything after that (decoding, the login, the user) is the same for all of them.
"""

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.security import OAuth2PasswordBearer
from starlette.requests import HTTPConnection

from app.auth import service as auth_service
from app.auth.service import AccountMail, Authentication
from app.core.config import Settings
from app.core.db import SAFE_METHODS, SessionDep
from app.core.errors import NotAuthenticated, PermissionDenied
from app.core.passwords import PasswordPolicy
from app.core.paths import API_V1_PREFIX, AUTH_PREFIX, TOKEN_PATH
from app.core.rate_limits import RequestLimitsDep
from app.core.security import PasswordHasher, TokenCodec
from app.core.surfaces import Surfaces
from app.mail.dependencies import MailComposerDep
from app.models import User

# A route whose caller may be anonymous says so in its OpenAPI security: `openapi_extra=` this.
OPTIONAL_AUTHENTICATION: dict[str, Any] = {"security": [{}]}


class AccessToken(OAuth2PasswordBearer):
    """The request's access token, carried as its surface says; None when there is none.

    Credentials that are there but unusable (another scheme, no token) are refused, not ignored:
    a caller who meant to sign in must not be served as anonymous.
    """

    async def __call__(self, request: HTTPConnection) -> str | None:
        header = request.headers.get("Authorization")
        if header is None:
            return None
        surfaces: Surfaces = request.app.state.surfaces
        surface = surfaces.for_path(request.scope["path"])
        scheme, _, token = header.partition(" ")
        if not surface.accepts_scheme(scheme) or not token.strip():
            expected = surface.authorization_scheme
            raise NotAuthenticated(f"Send the access token as `Authorization: {expected} <token>`.")
        return token.strip()


access_token = AccessToken(tokenUrl=f"{API_V1_PREFIX}{AUTH_PREFIX}{TOKEN_PATH}", auto_error=False)


async def get_token_codec(request: Request) -> TokenCodec:
    codec: TokenCodec = request.app.state.token_codec
    return codec


async def get_password_hasher(request: Request) -> PasswordHasher:
    hasher: PasswordHasher = request.app.state.password_hasher
    return hasher


async def get_password_policy(request: Request) -> PasswordPolicy:
    policy: PasswordPolicy = request.app.state.password_policy
    return policy


TokenCodecDep = Annotated[TokenCodec, Depends(get_token_codec)]
PasswordHasherDep = Annotated[PasswordHasher, Depends(get_password_hasher)]
PasswordPolicyDep = Annotated[PasswordPolicy, Depends(get_password_policy)]


async def count_sign_in_attempt(limits: RequestLimitsDep) -> None:
    """Every sign-in attempt counts against its address (RATE_LIMIT_LOGIN_ADDRESS), before any
    lookup: 429 once it has none left, 503 when the shared limit cannot be consulted."""
    await limits.count(limits.rate_limits.login_address, limits.address)


async def get_optional_authentication(
    token: Annotated[str | None, Depends(access_token)],
    request: Request,
    session: SessionDep,
    codec: TokenCodecDep,
) -> Authentication | None:
    """The caller's login; None for an anonymous request. A token that fails is still a 401."""
    if token is None:
        return None
    writes = request.method not in SAFE_METHODS
    return await auth_service.authenticate(session, codec, token, for_update=writes)


OptionalAuthentication = Annotated[Authentication | None, Depends(get_optional_authentication)]


async def get_authentication(authentication: OptionalAuthentication) -> Authentication:
    if authentication is None:
        raise NotAuthenticated
    return authentication


CurrentAuthentication = Annotated[Authentication, Depends(get_authentication)]


async def get_optional_user(authentication: OptionalAuthentication) -> User | None:
    return authentication.user if authentication else None


OptionalUser = Annotated[User | None, Depends(get_optional_user)]


async def get_current_user(authentication: CurrentAuthentication) -> User:
    return authentication.user


CurrentUser = Annotated[User, Depends(get_current_user)]


async def get_superuser(user: CurrentUser) -> User:
    if not user.is_superuser:
        raise PermissionDenied("Only administrators may do this.")
    return user


SuperUser = Annotated[User, Depends(get_superuser)]


async def get_account_mail(request: Request, composer: MailComposerDep) -> AccountMail:
    settings: Settings = request.app.state.settings
    return AccountMail.from_settings(settings, composer)


AccountMailDep = Annotated[AccountMail, Depends(get_account_mail)]


# How soon a password-reset request may be answered. For a known address it writes the link and
# the queued message and commits them (measured: 10-15 ms more than for an unknown one on
# PostgreSQL), which would tell anyone timing it who has an account.
RESET_REQUEST_FLOOR_SECONDS = 0.15


async def answer_no_sooner_than_the_floor() -> AsyncIterator[None]:
    """Hold the answer until RESET_REQUEST_FLOOR_SECONDS after the request began. Listed first,
    it ends last: after the unit of work has committed, just before the answer is sent."""
    started = time.monotonic()
    yield
    await asyncio.sleep(max(0.0, RESET_REQUEST_FLOOR_SECONDS - (time.monotonic() - started)))


ANSWER_NO_SOONER_THAN_THE_FLOOR = Depends(answer_no_sooner_than_the_floor, scope="function")
