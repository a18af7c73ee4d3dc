from fastapi import APIRouter, Response, status

from app.auth.dependencies import OPTIONAL_AUTHENTICATION, CurrentUser, OptionalUser
from app.core.cache_control import VARY_AUTHORIZATION
from app.core.conditional import IfMatchDep, strong_entity_tag
from app.core.db import SessionDep
from app.core.ids import AuthorIdQuery, PostIdPath
from app.core.links import LinksDep
from app.core.pagination import Page, PageDep, PageRead
from app.core.paths import FEED_PATH, POSTS_PREFIX, TAGS_PREFIX, USERS_PREFIX
from app.core.problem_details import problem_responses
from app.idempotency.dependencies import IdempotentRoute
from app.idempotency.service import CreatedKind
from app.posts import service as posts_service
from app.posts.dependencies import EditablePost
from app.posts.schemas import (
    FavoritedByQuery,
    PostCreate,
    PostRead,
    PostUpdate,
    SlugPath,
    TagList,
    TagQuery,
)
from app.posts.service import PostFilter, PostView
from app.users.dependencies import VisibleUser


class PostCreatingRoute(IdempotentRoute):
    """Its POST creates a post: a retry after the post was deleted is told so (409)."""

    creates = CreatedKind.POST


router = APIRouter(prefix=POSTS_PREFIX, tags=["posts"], route_class=PostCreatingRoute)
# A user's posts live under the user's URL, and are posts' business.
author_router = APIRouter(prefix=USERS_PREFIX, tags=["posts"])
# The tags in use, and the caller's feed, are views of posts too.
tags_router = APIRouter(prefix=TAGS_PREFIX, tags=["posts"])
feed_router = APIRouter(tags=["posts"])

# The stateful fuzzer, and any client, can follow a post to what may be done with it.
_POST_ID_LINKS = {
    name: {"operationId": name, "parameters": {"post_id": "$response.body#/id"}}
    for name in (
        "get_post",
        "update_post",
        "delete_post",
        "favorite_post",
        "unfavorite_post",
        "list_comments",
        "add_comment",
    )
}


@router.post(
    "/",
    status_code=status.HTTP_201_CREATED,
    response_model=PostRead,
    # No link to get_post_by_slug: a new title moves the slug, so a client follows the id.
    # 409: Idempotency-Key used for another request, while its first request still runs, or
    # after what that request created was deleted.
    responses={**problem_responses(401, 409), 201: {"links": _POST_ID_LINKS}},
)
async def create_post(
    data: PostCreate, user: CurrentUser, session: SessionDep, links: LinksDep, response: Response
) -> PostView:
    """The post gets a slug made of its title's words, with a suffix when another post has it."""
    post = await posts_service.create(
        session,
        user,
        title=data.title,
        content=data.content,
        description=data.description,
        tags=data.tags,
    )
    response.headers["Location"] = links.url_for("get_post", post_id=post.id)
    return post


@router.get(
    "/",
    response_model=PageRead[PostRead],
    responses=problem_responses(401),
    openapi_extra=OPTIONAL_AUTHENTICATION,
    dependencies=[VARY_AUTHORIZATION],
)
async def list_posts(
    page: PageDep,
    viewer: OptionalUser,
    session: SessionDep,
    author_id: AuthorIdQuery = None,
    tag: TagQuery = None,
    favorited_by: FavoritedByQuery = None,
) -> Page[PostView]:
    """Newest first; posts created in the same instant are ordered by id. An unknown tag or
    user gives an empty page."""
    filters = PostFilter(author_id=author_id, tag=tag, favorited_by=favorited_by)
    return await posts_service.list_newest_first(session, page, viewer=viewer, filters=filters)


# A post's ETag names its version, the same for every caller: send it in If-Match to edit.
_ETAG = {"ETag": {"description": "The post's version", "schema": {"type": "string"}}}


def _tagged(view: PostView, response: Response) -> PostView:
    response.headers["ETag"] = strong_entity_tag(posts_service.version_of(view))
    return view


@router.get(
    "/by-slug/{slug}",
    response_model=PostRead,
    responses={**problem_responses(401, 404), 200: {"links": _POST_ID_LINKS, "headers": _ETAG}},
    openapi_extra=OPTIONAL_AUTHENTICATION,
    dependencies=[VARY_AUTHORIZATION],
)
async def get_post_by_slug(
    slug: SlugPath, viewer: OptionalUser, session: SessionDep, response: Response
) -> PostView:
    return _tagged(await posts_service.get_view_by_slug(session, slug, viewer=viewer), response)


@router.get(
    "/{post_id}",
    response_model=PostRead,
    responses={**problem_responses(401, 404), 200: {"headers": _ETAG}},
    openapi_extra=OPTIONAL_AUTHENTICATION,
    dependencies=[VARY_AUTHORIZATION],
)
async def get_post(
    post_id: PostIdPath, viewer: OptionalUser, session: SessionDep, response: Response
) -> PostView:
    return _tagged(await posts_service.get_view(session, post_id, viewer=viewer), response)


@router.patch(
    "/{post_id}",
    response_model=PostRead,
    responses={**problem_responses(401, 403, 404, 412), 200: {"headers": _ETAG}},
)
async def update_post(
    changes: PostUpdate,
    post: EditablePost,
    user: CurrentUser,
    if_match: IfMatchDep,
    session: SessionDep,
    response: Response,
) -> PostView:
    """A new title gives the post a new slug, unless its words are the same; other edits keep
    it. `tags` replaces every tag (`[]` removes them). With If-Match, only the version it names
    is edited (412 otherwise)."""
    edited = await posts_service.update(
        session, post, changes.changes(), viewer=user, if_match=if_match
    )
    return _tagged(edited, response)


@router.delete(
    "/{post_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=problem_responses(401, 403, 404),
)
async def delete_post(post: EditablePost, session: SessionDep) -> None:
    await posts_service.delete(session, post)


@router.put("/{post_id}/favorite", response_model=PostRead, responses=problem_responses(401, 404))
async def favorite_post(post_id: PostIdPath, user: CurrentUser, session: SessionDep) -> PostView:
    """Idempotent: the post, favorited by the caller."""
    return await posts_service.favorite(session, user, post_id=post_id)


@router.delete(
    "/{post_id}/favorite", response_model=PostRead, responses=problem_responses(401, 404)
)
async def unfavorite_post(post_id: PostIdPath, user: CurrentUser, session: SessionDep) -> PostView:
    """Idempotent: the post, not favorited by the caller."""
    return await posts_service.unfavorite(session, user, post_id=post_id)


@author_router.get(
    "/{user_id}/posts",
    response_model=PageRead[PostRead],
    responses=problem_responses(401, 404),
    openapi_extra=OPTIONAL_AUTHENTICATION,
    dependencies=[VARY_AUTHORIZATION],
)
async def list_user_posts(
    user: VisibleUser, page: PageDep, viewer: OptionalUser, session: SessionDep
) -> Page[PostView]:
    """The user's posts, newest first."""
    filters = PostFilter(author_id=user.id)
    return await posts_service.list_newest_first(session, page, viewer=viewer, filters=filters)


@tags_router.get(
    "",
    response_model=TagList,
    responses=problem_responses(401),
    openapi_extra=OPTIONAL_AUTHENTICATION,
    dependencies=[VARY_AUTHORIZATION],
)
async def list_tags(_viewer: OptionalUser, session: SessionDep) -> TagList:
    """Every tag some visible post carries, sorted by code point; the same for every caller
    (a token is checked all the same)."""
    return TagList(tags=await posts_service.list_tags(session))


@feed_router.get(
    FEED_PATH,
    response_model=PageRead[PostRead],
    responses=problem_responses(401),
    dependencies=[VARY_AUTHORIZATION],
)
async def feed(page: PageDep, user: CurrentUser, session: SessionDep) -> Page[PostView]:
    """The posts of the users the caller follows, newest first."""
    return await posts_service.feed(session, page, viewer=user)
