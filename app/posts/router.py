from fastapi import APIRouter, Response, status

from app.auth.dependencies import OPTIONAL_AUTHENTICATION, CurrentUser, OptionalUser
from app.core.cache_control import VARY_AUTHORIZATION
from app.core.db import SessionDep
from app.core.ids import AuthorIdQuery
from app.core.links import LinksDep
from app.core.pagination import Page, PageDep, PageRead
from app.core.paths import POSTS_PREFIX, USERS_PREFIX
from app.core.problem_details import problem_responses
from app.models import Post
from app.posts import service as posts_service
from app.posts.dependencies import EditablePost, ExistingPost
from app.posts.schemas import PostCreate, PostRead, PostUpdate
from app.users.dependencies import VisibleUser

router = APIRouter(prefix=POSTS_PREFIX, tags=["posts"])
# A user's posts live under the user's URL, and are posts' business.
author_router = APIRouter(prefix=USERS_PREFIX, tags=["posts"])

# The stateful fuzzer, and any client, can follow a created post to what may be done with it.
_POST_LINKS = {
    name: {"operationId": name, "parameters": {"post_id": "$response.body#/id"}}
    for name in ("get_post", "update_post", "delete_post")
}


@router.post(
    "/",
    status_code=status.HTTP_201_CREATED,
    response_model=PostRead,
    responses={**problem_responses(401), 201: {"links": _POST_LINKS}},
)
async def create_post(
    data: PostCreate, user: CurrentUser, session: SessionDep, links: LinksDep, response: Response
) -> Post:
    post = await posts_service.create(session, user, data)
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
) -> Page[Post]:
    """Newest first; posts created in the same instant are ordered by id."""
    return await posts_service.list_newest_first(session, page, viewer=viewer, author_id=author_id)


@router.get(
    "/{post_id}",
    response_model=PostRead,
    responses=problem_responses(401, 404),
    openapi_extra=OPTIONAL_AUTHENTICATION,
    dependencies=[VARY_AUTHORIZATION],
)
async def get_post(post: ExistingPost) -> Post:
    return post


@router.patch("/{post_id}", response_model=PostRead, responses=problem_responses(401, 403, 404))
async def update_post(changes: PostUpdate, post: EditablePost, session: SessionDep) -> Post:
    return await posts_service.update(session, post, changes)


@router.delete(
    "/{post_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=problem_responses(401, 403, 404),
)
async def delete_post(post: EditablePost, session: SessionDep) -> None:
    await posts_service.delete(session, post)


@author_router.get(
    "/{user_id}/posts",
    response_model=PageRead[PostRead],
    responses=problem_responses(401, 404),
    openapi_extra=OPTIONAL_AUTHENTICATION,
    dependencies=[VARY_AUTHORIZATION],
)
async def list_user_posts(
    user: VisibleUser, page: PageDep, viewer: OptionalUser, session: SessionDep
) -> Page[Post]:
    """The user's posts, newest first."""
    return await posts_service.list_newest_first(session, page, viewer=viewer, author_id=user.id)
