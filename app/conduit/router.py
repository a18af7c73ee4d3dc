"""The Conduit routes: the paths, envelopes and statuses of the RealWorld contract.

Every route is thin: the caller and the input in, one service call, Conduit's wire format out.
Errors are AppErrors, written by the surface (app/conduit/surface.py) in Conduit's format.
"""

from typing import Any

from fastapi import APIRouter, Depends, status
from fastapi.routing import APIRoute
from starlette.convertors import StringConvertor, register_url_convertor

from app.auth.dependencies import (
    OPTIONAL_AUTHENTICATION,
    AccountMailDep,
    CurrentUser,
    OptionalUser,
    PasswordHasherDep,
    PasswordPolicyDep,
    TokenCodecDep,
    count_sign_in_attempt,
)
from app.comments import service as comments_service
from app.conduit import service as conduit_service
from app.conduit.dependencies import ConduitCallerDep, EditableArticle, TokenLifetimeDep
from app.conduit.schemas import (
    AuthorQuery,
    CommentIdPath,
    ConduitArticleResponse,
    ConduitArticlesResponse,
    ConduitArticleUpdateRequest,
    ConduitComment,
    ConduitCommentResponse,
    ConduitCommentsResponse,
    ConduitLoginRequest,
    ConduitNewArticleRequest,
    ConduitNewCommentRequest,
    ConduitNewUserRequest,
    ConduitProfile,
    ConduitProfileResponse,
    ConduitTagsResponse,
    ConduitUserResponse,
    ConduitUserUpdateRequest,
    FavoritedQuery,
    SlugPath,
    TagQuery,
    UsernamePath,
)
from app.conduit.surface import conduit_responses
from app.core.cache_control import NO_STORE, VARY_AUTHORIZATION
from app.core.db import SessionDep
from app.core.pagination import PageDep
from app.core.paths import CONDUIT_PREFIX
from app.core.rate_limits import RequestLimitsDep
from app.posts import service as posts_service
from app.posts.service import PostFilter
from app.users import service as users_service
from app.users.dependencies import count_sign_up
from app.users.service import AccountChanges

TAG = "conduit"


class ArticleSlugConvertor(StringConvertor):
    """A path segment that is not `feed`: /api/articles/feed is the feed, and no route of one
    article answers there (nor says, in a 405's Allow, that it would)."""

    regex = r"(?!feed$)[^/]+"


register_url_convertor("article_slug", ArticleSlugConvertor())
ARTICLE = "/articles/{slug:article_slug}"


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


# The stateful fuzzer, and any client, can follow what a write made to what may be done with
# it. Not to PUT /articles/{slug}: a new title moves the slug, and a chain that renamed an
# article would then follow a slug that names nothing any more.
def _links(source: str, parameter: str, *operations: str) -> dict[str, Any]:
    return {name: {"operationId": name, "parameters": {parameter: source}} for name in operations}


_PROFILE_LINKS = _links(
    "$response.body#/user/username", "username", "conduit_get_profile", "conduit_follow"
)
_ARTICLE_LINKS = _links(
    "$response.body#/article/slug",
    "slug",
    "conduit_get_article",
    "conduit_delete_article",
    "conduit_favorite",
    "conduit_unfavorite",
    "conduit_list_comments",
    "conduit_add_comment",
)
_COMMENT_LINKS = {
    "conduit_delete_comment": {
        "operationId": "conduit_delete_comment",
        "parameters": {"slug": "$request.path.slug", "id": "$response.body#/comment/id"},
    }
}


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
    responses={**conduit_responses(409), 201: {"links": _PROFILE_LINKS}},
    dependencies=[NO_STORE, Depends(count_sign_up)],
)
async def conduit_register(
    body: ConduitNewUserRequest,
    session: SessionDep,
    hasher: PasswordHasherDep,
    policy: PasswordPolicyDep,
    codec: TokenCodecDep,
    mail: AccountMailDep,
    lifetime: TokenLifetimeDep,
) -> ConduitUserResponse:
    """Sign up, signed in at once. The account is the same as one made on /api/v1 (a welcome
    with a verification link is mailed); limited as /api/v1's sign-up is."""
    signed_in = await conduit_service.register(
        session,
        hasher,
        policy,
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
    policy: PasswordPolicyDep,
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
        policy,
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


# --- Profiles ----------------------------------------------------------------------------------


@router.get(
    "/profiles/{username}",
    response_model=ConduitProfileResponse,
    responses=conduit_responses(401, 404),
    openapi_extra=OPTIONAL_AUTHENTICATION,
    dependencies=[VARY_AUTHORIZATION],
)
async def conduit_get_profile(
    username: UsernamePath, viewer: OptionalUser, session: SessionDep
) -> ConduitProfileResponse:
    profile = await users_service.get_profile_by_username(session, username, viewer=viewer)
    return ConduitProfileResponse(profile=ConduitProfile.of(profile))


@router.post(
    "/profiles/{username}/follow",
    response_model=ConduitProfileResponse,
    responses=conduit_responses(401, 404, 409),
)
async def conduit_follow(
    username: UsernamePath, user: CurrentUser, session: SessionDep
) -> ConduitProfileResponse:
    """Follow the user (again: nothing changes). Nobody follows themselves: 409."""
    profile = await users_service.follow(session, user, username=username)
    return ConduitProfileResponse(profile=ConduitProfile.of(profile))


@router.delete(
    "/profiles/{username}/follow",
    response_model=ConduitProfileResponse,
    responses=conduit_responses(401, 404),
)
async def conduit_unfollow(
    username: UsernamePath, user: CurrentUser, session: SessionDep
) -> ConduitProfileResponse:
    """Stop following the user (whom you may not follow: nothing changes)."""
    profile = await users_service.unfollow(session, user, username=username)
    return ConduitProfileResponse(profile=ConduitProfile.of(profile))


# --- Articles ----------------------------------------------------------------------------------


@router.get(
    "/articles",
    response_model=ConduitArticlesResponse,
    responses=conduit_responses(401),
    openapi_extra=OPTIONAL_AUTHENTICATION,
    dependencies=[VARY_AUTHORIZATION],
)
async def conduit_list_articles(
    page: PageDep,
    viewer: OptionalUser,
    session: SessionDep,
    tag: TagQuery = None,
    author: AuthorQuery = None,
    favorited: FavoritedQuery = None,
) -> ConduitArticlesResponse:
    """Newest first, without their bodies; `articlesCount` counts the whole list. An unknown
    tag, author or user who favorited gives an empty list."""
    filters = PostFilter(author_username=author, tag=tag, favorited_by=favorited)
    posts = await posts_service.list_newest_first(session, page, viewer=viewer, filters=filters)
    return ConduitArticlesResponse.of(posts)


@router.get(
    "/articles/feed",
    response_model=ConduitArticlesResponse,
    responses=conduit_responses(401),
    dependencies=[VARY_AUTHORIZATION],
)
async def conduit_feed(
    page: PageDep, user: CurrentUser, session: SessionDep
) -> ConduitArticlesResponse:
    """The articles of the users you follow, newest first, without their bodies."""
    return ConduitArticlesResponse.of(await posts_service.feed(session, page, viewer=user))


@router.post(
    "/articles",
    status_code=status.HTTP_201_CREATED,
    response_model=ConduitArticleResponse,
    responses={**conduit_responses(401), 201: {"links": _ARTICLE_LINKS}},
)
async def conduit_create_article(
    body: ConduitNewArticleRequest, user: CurrentUser, session: SessionDep
) -> ConduitArticleResponse:
    """Its slug comes from its title; a title another article has gets a slug of its own."""
    article = body.article
    post = await posts_service.create(
        session,
        user,
        title=article.title,
        content=article.body,
        description=article.description,
        tags=article.tag_list,
    )
    return ConduitArticleResponse.of(post)


@router.get(
    ARTICLE,
    response_model=ConduitArticleResponse,
    responses=conduit_responses(401, 404),
    openapi_extra=OPTIONAL_AUTHENTICATION,
    dependencies=[VARY_AUTHORIZATION],
)
async def conduit_get_article(
    slug: SlugPath, viewer: OptionalUser, session: SessionDep
) -> ConduitArticleResponse:
    return ConduitArticleResponse.of(
        await posts_service.get_view_by_slug(session, slug, viewer=viewer)
    )


@router.put(
    ARTICLE,
    response_model=ConduitArticleResponse,
    responses=conduit_responses(401, 403, 404),
)
async def conduit_update_article(
    body: ConduitArticleUpdateRequest, post: EditableArticle, user: CurrentUser, session: SessionDep
) -> ConduitArticleResponse:
    """By its author or an administrator. A new title gives it a new slug; `tagList: []` removes
    every tag, and `tagList: null` is refused (422)."""
    return ConduitArticleResponse.of(
        await posts_service.update(session, post, body.article.changes(), viewer=user)
    )


@router.delete(
    ARTICLE,
    status_code=status.HTTP_204_NO_CONTENT,
    responses=conduit_responses(401, 403, 404),
)
async def conduit_delete_article(post: EditableArticle, session: SessionDep) -> None:
    """By its author or an administrator; its comments go with it."""
    await posts_service.delete(session, post)


# --- Favorites ---------------------------------------------------------------------------------


@router.post(
    "/articles/{slug}/favorite",
    response_model=ConduitArticleResponse,
    responses=conduit_responses(401, 404),
)
async def conduit_favorite(
    slug: SlugPath, user: CurrentUser, session: SessionDep
) -> ConduitArticleResponse:
    """Favorite the article (again: nothing changes)."""
    return ConduitArticleResponse.of(await posts_service.favorite(session, user, slug=slug))


@router.delete(
    "/articles/{slug}/favorite",
    response_model=ConduitArticleResponse,
    responses=conduit_responses(401, 404),
)
async def conduit_unfavorite(
    slug: SlugPath, user: CurrentUser, session: SessionDep
) -> ConduitArticleResponse:
    """Unfavorite the article (again: nothing changes)."""
    return ConduitArticleResponse.of(await posts_service.unfavorite(session, user, slug=slug))


# --- Comments ----------------------------------------------------------------------------------


@router.get(
    "/articles/{slug}/comments",
    response_model=ConduitCommentsResponse,
    responses=conduit_responses(401, 404),
    openapi_extra=OPTIONAL_AUTHENTICATION,
    dependencies=[VARY_AUTHORIZATION],
)
async def conduit_list_comments(
    slug: SlugPath, viewer: OptionalUser, session: SessionDep
) -> ConduitCommentsResponse:
    """Oldest first."""
    comments = await comments_service.list_for_post(session, viewer=viewer, slug=slug)
    return ConduitCommentsResponse(comments=[ConduitComment.of(c) for c in comments])


@router.post(
    "/articles/{slug}/comments",
    status_code=status.HTTP_201_CREATED,
    response_model=ConduitCommentResponse,
    responses={**conduit_responses(401, 404), 201: {"links": _COMMENT_LINKS}},
)
async def conduit_add_comment(
    slug: SlugPath, body: ConduitNewCommentRequest, user: CurrentUser, session: SessionDep
) -> ConduitCommentResponse:
    comment = await comments_service.add(session, user, body.comment.body, slug=slug)
    return ConduitCommentResponse(comment=ConduitComment.of(comment))


@router.delete(
    "/articles/{slug}/comments/{id}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=conduit_responses(401, 403, 404),
)
async def conduit_delete_comment(
    slug: SlugPath, comment_id: CommentIdPath, user: CurrentUser, session: SessionDep
) -> None:
    """By its author or an administrator. 404 for a comment of another article."""
    await comments_service.delete(session, user, comment_id, slug=slug)


# --- Tags --------------------------------------------------------------------------------------


@router.get(
    "/tags",
    response_model=ConduitTagsResponse,
    responses=conduit_responses(401),
    openapi_extra=OPTIONAL_AUTHENTICATION,
    dependencies=[VARY_AUTHORIZATION],
)
async def conduit_list_tags(_viewer: OptionalUser, session: SessionDep) -> ConduitTagsResponse:
    """Every tag some visible article carries, sorted; the same for every caller (a token is
    checked all the same: one that fails is a 401, as on every read)."""
    return ConduitTagsResponse(tags=await posts_service.list_tags(session))
