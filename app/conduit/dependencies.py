from dataclasses import dataclass
from datetime import timedelta
from typing import Annotated, cast

from fastapi import Depends, Request

from app.auth.dependencies import CurrentAuthentication, access_token
from app.auth.service import Authentication
from app.core.config import Settings


@dataclass(frozen=True, slots=True)
class ConduitCaller:
    """Who is calling, and the token they called with: Conduit's user answers carry it."""

    authentication: Authentication
    token: str


async def get_conduit_caller(
    authentication: CurrentAuthentication,
    token: Annotated[str | None, Depends(access_token)],
) -> ConduitCaller:
    # The authentication was read from this token, so there is one.
    return ConduitCaller(authentication=authentication, token=cast("str", token))


async def get_token_lifetime(request: Request) -> timedelta:
    """How long a Conduit token lives (CONDUIT_TOKEN_TTL_SECONDS)."""
    settings: Settings = request.app.state.settings
    return timedelta(seconds=settings.CONDUIT_TOKEN_TTL_SECONDS)


ConduitCallerDep = Annotated[ConduitCaller, Depends(get_conduit_caller)]
TokenLifetimeDep = Annotated[timedelta, Depends(get_token_lifetime)]
