"""The versioned native API: every domain router, under /api/v1."""

from fastapi import APIRouter

from app.auth.router import router as auth_router
from app.core.errors import problem_responses
from app.posts.router import router as posts_router
from app.users.router import router as users_router

API_V1_PREFIX = "/api/v1"

# Every operation can fail these ways, whatever else it documents.
api_router = APIRouter(prefix=API_V1_PREFIX, responses=problem_responses(500, 503))
api_router.include_router(auth_router)
api_router.include_router(users_router)
api_router.include_router(posts_router)
