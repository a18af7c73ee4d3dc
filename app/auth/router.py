from typing import Annotated

from fastapi import APIRouter, Depends, Form, status

from app.auth import service as auth_service
from app.auth.dependencies import PasswordHasherDep, TokenCodecDep, count_sign_in_attempt
from app.auth.schemas import PasswordLoginForm, RefreshTokenIn, TokenPair
from app.auth.service import IssuedTokens
from app.core.cache_control import NO_STORE
from app.core.db import SessionDep
from app.core.paths import AUTH_PREFIX, TOKEN_PATH
from app.core.problem_details import problem_responses
from app.core.rate_limits import RequestLimitsDep

router = APIRouter(prefix=AUTH_PREFIX, tags=["auth"])


@router.post(
    TOKEN_PATH,
    response_model=TokenPair,
    # Tokens must not be kept by any cache on the way.
    dependencies=[NO_STORE, Depends(count_sign_in_attempt)],
    responses=problem_responses(401),
)
async def issue_token(
    form: Annotated[PasswordLoginForm, Form()],
    session: SessionDep,
    hasher: PasswordHasherDep,
    codec: TokenCodecDep,
    limits: RequestLimitsDep,
) -> IssuedTokens:
    """OAuth2 password flow: `username` may be the username or the email.

    Limited per address (every attempt) and per account (failed attempts): over either, 429.
    """
    return await auth_service.login(
        session, hasher, codec, limits, username_or_email=form.username, password=form.password
    )


@router.post(
    "/refresh",
    response_model=TokenPair,
    # Tokens must not be kept by any cache on the way.
    dependencies=[NO_STORE],
    responses=problem_responses(401),
)
async def refresh_token(
    body: RefreshTokenIn, session: SessionDep, codec: TokenCodecDep
) -> IssuedTokens:
    """Exchange a refresh token for a new pair. A refresh token works once."""
    return await auth_service.refresh(session, codec, body.refresh_token)


@router.post("/logout", status_code=status.HTTP_204_NO_CONTENT, responses=problem_responses(401))
async def logout(body: RefreshTokenIn, session: SessionDep, codec: TokenCodecDep) -> None:
    """End the login of this refresh token: its access and refresh tokens stop working."""
    await auth_service.logout(session, codec, body.refresh_token)
