from typing import Annotated

from fastapi import APIRouter, Depends, Form, status

from app.auth import service as auth_service
from app.auth.dependencies import (
    ANSWER_NO_SOONER_THAN_THE_FLOOR,
    AccountMailDep,
    CurrentUser,
    PasswordHasherDep,
    PasswordPolicyDep,
    TokenCodecDep,
    count_sign_in_attempt,
)
from app.auth.schemas import (
    PASSWORD_RESET_ACCEPTED,
    VERIFICATION_ACCEPTED,
    EmailVerificationConfirm,
    MailRequestAccepted,
    PasswordLoginForm,
    PasswordResetConfirm,
    PasswordResetRequest,
    RefreshTokenIn,
    TokenPair,
)
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


@router.post(
    "/verify-email/request",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=MailRequestAccepted,
    responses=problem_responses(401, 409),
)
async def request_email_verification(
    user: CurrentUser, session: SessionDep, mail: AccountMailDep, limits: RequestLimitsDep
) -> MailRequestAccepted:
    """Mail a new verification link to your address; links mailed before keep working.

    409 (`email_already_verified`) when it is verified already. Limited per address and per
    client (RATE_LIMIT_MAIL_ADDRESS, RATE_LIMIT_MAIL_CLIENT): over either, the answer is the
    same 202 and nothing is sent.
    """
    await auth_service.request_email_verification(session, mail, limits, user)
    return VERIFICATION_ACCEPTED


@router.post(
    "/verify-email/confirm",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=problem_responses(400),
)
async def confirm_email(body: EmailVerificationConfirm, session: SessionDep) -> None:
    """The link's token verifies the address it was mailed to; no sign-in needed.

    400 for a token that cannot be used (`token_expired`; `token_invalid`: unknown, used, for
    another purpose, or mailed to an address the account no longer has); nothing changes.
    """
    await auth_service.confirm_email(session, body.token)


@router.post(
    "/password-reset/request",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=MailRequestAccepted,
    # First: it ends after the commit, so a known address takes no longer than an unknown one.
    dependencies=[ANSWER_NO_SOONER_THAN_THE_FLOOR],
)
async def request_password_reset(
    body: PasswordResetRequest, session: SessionDep, mail: AccountMailDep, limits: RequestLimitsDep
) -> MailRequestAccepted:
    """Mail a reset link to this address if an active account has it; older reset links of the
    account stop working.

    Always the same 202, whether or not such an account exists. Limited per address and per
    client: over either, the same 202 and nothing is sent.
    """
    await auth_service.request_password_reset(session, mail, limits, email=body.email)
    return PASSWORD_RESET_ACCEPTED


@router.post(
    "/password-reset/confirm",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=problem_responses(400),
)
async def reset_password(
    body: PasswordResetConfirm,
    session: SessionDep,
    hasher: PasswordHasherDep,
    policy: PasswordPolicyDep,
) -> None:
    """Set a new password with the link's token: every login of the account ends (all its
    access and refresh tokens), and every other reset link stops working.

    400 for a token that cannot be used (`token_expired`, `token_invalid`); nothing changes.
    With PASSWORD_REJECT_COMMON, a common password is a 422 (`password_too_common`).
    """
    await auth_service.reset_password(
        session, hasher, policy, token=body.token, new_password=body.new_password
    )
