from fastapi import APIRouter, Response, status

from app.auth.dependencies import OPTIONAL_AUTHENTICATION, CurrentUser, OptionalUser
from app.comments import service as comments_service
from app.comments.schemas import CommentCreate, CommentRead
from app.comments.service import CommentView
from app.core.cache_control import VARY_AUTHORIZATION
from app.core.db import SessionDep
from app.core.ids import CommentIdPath, PostIdPath
from app.core.links import LinksDep
from app.core.pagination import Page, PageDep, PageRead
from app.core.paths import POSTS_PREFIX
from app.core.problem_details import problem_responses
from app.idempotency.dependencies import IdempotentRoute
from app.idempotency.service import CreatedKind


# A post's comments live under the post's URL.
class CommentCreatingRoute(IdempotentRoute):
    """Its POST creates a comment: a retry after the comment was deleted is told so (409)."""

    creates = CreatedKind.COMMENT


router = APIRouter(prefix=POSTS_PREFIX, tags=["comments"], route_class=CommentCreatingRoute)

# The stateful fuzzer, and any client, can follow a new comment to its deletion.
_COMMENT_LINKS = {
    "delete_comment": {
        "operationId": "delete_comment",
        "parameters": {
            "post_id": "$response.body#/post_id",
            "comment_id": "$response.body#/id",
        },
    }
}


@router.get(
    "/{post_id}/comments",
    response_model=PageRead[CommentRead],
    responses=problem_responses(401, 404),
    openapi_extra=OPTIONAL_AUTHENTICATION,
    dependencies=[VARY_AUTHORIZATION],
)
async def list_comments(
    post_id: PostIdPath, page: PageDep, viewer: OptionalUser, session: SessionDep
) -> Page[CommentView]:
    """Oldest first; comments made in the same instant are ordered by id."""
    return await comments_service.page_for_post(session, page, viewer=viewer, post_id=post_id)


@router.post(
    "/{post_id}/comments",
    status_code=status.HTTP_201_CREATED,
    response_model=CommentRead,
    # 409: Idempotency-Key used for another request, while its first request still runs, or
    # after what that request created was deleted.
    responses={**problem_responses(401, 404, 409), 201: {"links": _COMMENT_LINKS}},
)
async def add_comment(
    post_id: PostIdPath,
    data: CommentCreate,
    user: CurrentUser,
    session: SessionDep,
    links: LinksDep,
    response: Response,
) -> CommentView:
    comment = await comments_service.add(session, user, data.body, post_id=post_id)
    response.headers["Location"] = links.url_for("list_comments", post_id=post_id)
    return comment


@router.delete(
    "/{post_id}/comments/{comment_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=problem_responses(401, 403, 404),
)
async def delete_comment(
    post_id: PostIdPath, comment_id: CommentIdPath, user: CurrentUser, session: SessionDep
) -> None:
    """By the comment's author or an administrator. 404 for a comment on another post."""
    await comments_service.delete(session, user, comment_id, post_id=post_id)
