from fastapi import APIRouter, Request, Response, status

from app.auth.dependencies import CurrentUser
from app.core.db import SessionDep
from app.core.errors import problem_responses
from app.core.ids import AuthorIdQuery
from app.core.pagination import Page, PageDep
from app.models import Post
from app.posts import service as posts_service
from app.posts.dependencies import EditablePost, ExistingPost
from app.posts.schemas import PostCreate, PostRead, PostUpdate

router = APIRouter(prefix="/posts", tags=["posts"])


@router.post(
    "/",
    status_code=status.HTTP_201_CREATED,
    response_model=PostRead,
    responses=problem_responses(401),
)
async def create_post(
    data: PostCreate, user: CurrentUser, session: SessionDep, request: Request, response: Response
) -> Post:
    post = await posts_service.create(session, user, data)
    response.headers["Location"] = str(request.url_for("get_post", post_id=post.id))
    return post


@router.get("/")
async def list_posts(
    page: PageDep,
    session: SessionDep,
    author_id: AuthorIdQuery = None,
) -> Page[PostRead]:
    """Newest first; posts created in the same instant are ordered by id."""
    return await posts_service.list_newest_first(session, page, author_id=author_id)


@router.get("/{post_id}", response_model=PostRead, responses=problem_responses(404))
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
