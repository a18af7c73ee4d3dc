"""The application: create_app() wires settings, database, middleware, errors and routes."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio
import structlog
from fastapi import FastAPI

from app.api import api_router
from app.core.config import Settings, get_settings
from app.core.db import Database
from app.core.docs import install_docs
from app.core.errors import install_error_handlers, install_problem_openapi
from app.core.logging import configure_logging
from app.core.middleware import RequestContextMiddleware
from app.core.migrations import ensure_at_head, upgrade_to_head
from app.core.security import PasswordHasher, TokenCodec
from app.health import router as health_router

log = structlog.get_logger(__name__)


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = (settings or get_settings()).with_secret_key()
    configure_logging(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if settings.auto_migrate:
            # Alembic's async env.py runs its own event loop, so it cannot run on this one.
            await anyio.to_thread.run_sync(upgrade_to_head, settings.database_url)
        database = Database(settings)
        try:
            await ensure_at_head(database.engine)
            app.state.database = database
            log.info("quill.started", environment=settings.ENVIRONMENT.value)
            yield
        finally:
            await database.dispose()

    app = FastAPI(
        title="Quill",
        version="0.1.0",
        summary="A publishing backend: users, auth and posts.",
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
    )
    app.state.settings = settings
    app.state.password_hasher = PasswordHasher(settings)
    app.state.token_codec = TokenCodec(settings)

    install_error_handlers(app)
    install_problem_openapi(app)
    install_docs(app)
    app.include_router(health_router)
    app.include_router(api_router)
    app.add_middleware(RequestContextMiddleware)
    return app


app = create_app()
