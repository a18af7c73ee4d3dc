"""The Conduit routes: the paths, envelopes and statuses of the RealWorld contract.

Every route is thin: the caller and the input in, one service call, Conduit's wire format out.
Errors are AppErrors, written by the surface (app/conduit/surface.py) in Conduit's format.
"""

from fastapi import APIRouter, Depends, status
from fastapi.routing import APIRoute

from app.auth.dependencies import (
    AccountMailDep,
    PasswordHasherDep,
    TokenCodecDep,
    count_sign_in_attempt,
)
from app.conduit import service as conduit_service
from app.conduit.dependencies import ConduitCallerDep, TokenLifetimeDep
from app.conduit.schemas import (
    ConduitLoginRequest,
    ConduitNewUserRequest,
    ConduitUserResponse,
    ConduitUserUpdateRequest,
)
from app.conduit.surface import conduit_responses
from app.core.cache_control import NO_STORE, VARY_AUTHORIZATION
from app.core.db import SessionDep
from app.core.paths import CONDUIT_PREFIX
from app.core.rate_limits import RequestLimitsDep
from app.users.dependencies import count_sign_up
from app.users.service import AccountChanges

TAG = "conduit"


def operation_id(route: APIRoute) -> str:
    """The route's function name (`conduit_login`), as on /api/v1: Conduit's own names would
    clash with /api/v1's in one document."""
    return route.name


# Every operation can fail these ways, whatever else it documents (429: the general rate limit).
router = APIRouter(
    prefix=CONDUIT_PREFIX,
    tags=[TAG],
    responses=conduit_responses(429, 500, 503),
    generate_unique_id_function=operation_id,
)


# --- Users and authentication ------------------------------------------------------------------


@router.post(
    "/users/login",
    response_model=ConduitUserResponse,
    responses=conduit_responses(401),
    # A token must not be kept by any cache on the way.
    dependencies=[NO_STORE, Depends(count_sign_in_attempt)],
)
async def conduit_login(
    body: ConduitLoginRequest,
    session: SessionDep,
    hasher: PasswordHasherDep,
    codec: TokenCodecDep,
    limits: RequestLimitsDep,
    lifetime: TokenLifetimeDep,
) -> ConduitUserResponse:
    """Sign in with the email and password: a token of its own, valid CONDUIT_TOKEN_TTL_SECONDS
    (Conduit clients cannot refresh). Limited as /api/v1's sign-in is: over a limit, 429."""
    signed_in = await conduit_service.login(
        session,
        hasher,
        codec,
        limits,
        email=body.user.email,
        password=body.user.password,
        token_lifetime=lifetime,
    )
    return ConduitUserResponse.of(signed_in.user, signed_in.token)


@router.post(
    "/users",
    status_code=status.HTTP_201_CREATED,
    response_model=ConduitUserResponse,
    responses=conduit_responses(409),
    dependencies=[NO_STORE, Depends(count_sign_up)],
)
async def conduit_register(
    body: ConduitNewUserRequest,
    session: SessionDep,
    hasher: PasswordHasherDep,
    codec: TokenCodecDep,
    mail: AccountMailDep,
    lifetime: TokenLifetimeDep,
) -> ConduitUserResponse:
    """Sign up, signed in at once. The account is the same as one made on /api/v1 (a welcome
    with a verification link is mailed); limited as /api/v1's sign-up is."""
    signed_in = await conduit_service.register(
        session,
        hasher,
        codec,
        mail,
        username=body.user.username,
        email=body.user.email,
        password=body.user.password,
        token_lifetime=lifetime,
    )
    return ConduitUserResponse.of(signed_in.user, signed_in.token)


@router.get(
    "/user",
    response_model=ConduitUserResponse,
    responses=conduit_responses(401),
    dependencies=[NO_STORE, VARY_AUTHORIZATION],
)
async def conduit_current_user(caller: ConduitCallerDep) -> ConduitUserResponse:
    """The caller, with the token they called with."""
    return ConduitUserResponse.of(caller.authentication.user, caller.token)


@router.put(
    "/user",
    response_model=ConduitUserResponse,
    responses=conduit_responses(401, 409),
    dependencies=[NO_STORE],
)
async def conduit_update_user(
    body: ConduitUserUpdateRequest,
    caller: ConduitCallerDep,
    session: SessionDep,
    hasher: PasswordHasherDep,
    mail: AccountMailDep,
) -> ConduitUserResponse:
    """Change the caller's account. As the contract says, a new email or password needs no
    current password: the token is enough. So either change ends every other login of the
    account (this one goes on); a new email is in force at once, unverified, and is mailed a
    verification link, the old address a notice with a link to reset the password."""
    changes = body.user
    signed_in = await conduit_service.update_user(
        session,
        hasher,
        mail,
        caller.authentication,
        caller.token,
        AccountChanges(
            email=changes.email,
            username=changes.username,
            password=changes.password,
            bio=changes.bio,
            image=changes.image,
        ),
    )
    return ConduitUserResponse.of(signed_in.user, signed_in.token)
