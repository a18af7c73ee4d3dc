"""The versioned native API: every domain router under /api/v1, and how that surface speaks."""

from fastapi import APIRouter
from fastapi.routing import APIRoute

from app.auth.router import router as auth_router
from app.comments.router import router as comments_router
from app.core.paths import API_V1_PREFIX
from app.core.problem_details import ProblemDetailsRenderer, problem_responses
from app.core.surfaces import Surface
from app.posts.router import author_router as author_posts_router
from app.posts.router import feed_router, tags_router
from app.posts.router import router as posts_router
from app.users.router import router as users_router

# Errors are RFC 9457 problem details; tokens come as `Authorization: Bearer <token>`.
API_V1_SURFACE = Surface(
    prefix=API_V1_PREFIX,
    renderer=ProblemDetailsRenderer(),
    authorization_schemes=("Bearer",),
)


def operation_id(route: APIRoute) -> str:
    """The route's function name (`get_post`): readable in generated clients; links name it."""
    return route.name


# Every operation can fail these ways, whatever else it documents (429: the general rate limit).
api_router = APIRouter(
    prefix=API_V1_PREFIX,
    responses=problem_responses(429, 500, 503),
    generate_unique_id_function=operation_id,
)
api_router.include_router(auth_router)
api_router.include_router(users_router)
api_router.include_router(posts_router)
api_router.include_router(author_posts_router)
api_router.include_router(comments_router)
api_router.include_router(tags_router)
api_router.include_router(feed_router)
