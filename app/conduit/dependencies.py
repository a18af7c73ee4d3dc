from dataclasses import dataclass
from datetime import timedelta
from typing import Annotated, cast

from fastapi import Depends, Request

from app.auth.dependencies import CurrentAuthentication, CurrentUser, access_token
from app.auth.service import Authentication
from app.conduit.schemas import SlugPath
from app.core.config import Settings
from app.core.db import SessionDep
from app.models import Post
from app.posts import service as posts_service


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


async def get_editable_article(slug: SlugPath, user: CurrentUser, session: SessionDep) -> Post:
    """401 before anything is looked up, then 404, then 403 (not the author, nor an
    administrator). The post stays locked until the request ends."""
    return await posts_service.get_editable(session, user, slug=slug)


EditableArticle = Annotated[Post, Depends(get_editable_article)]
