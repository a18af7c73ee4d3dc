"""The application: create_app() wires settings, database, middleware, errors and routes."""

from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager, nullcontext

import anyio
import structlog
from fastapi import FastAPI

from app.api import API_V1_SURFACE, api_router
from app.cached_reads import CACHED_READS, invalidate_on_commit
from app.constraint_errors import CONSTRAINT_ERRORS
from app.core.cache import build_cache_store
from app.core.config import Settings, get_settings
from app.core.db import Database
from app.core.docs import install_docs
from app.core.error_handlers import install_error_handlers
from app.core.logging import configure_logging
from app.core.middleware import RequestContextMiddleware
from app.core.migrations import ensure_at_head, upgrade_to_head
from app.core.openapi import install_openapi
from app.core.redis import RedisLink
from app.core.response_cache import ResponseCacheMiddleware
from app.core.security import PasswordHasher, TokenCodec
from app.core.surfaces import Surfaces
from app.health import router as health_router
from app.mail.composer import MailComposer
from app.mail.dispatcher import Dispatcher, running_dispatcher

log = structlog.get_logger(__name__)


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = (settings or get_settings()).with_secret_key()
    configure_logging(settings)
    # Paths outside every surface (/health, a typo) are answered as /api/v1 answers.
    surfaces = Surfaces(default=API_V1_SURFACE)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if settings.auto_migrate:
            # Alembic's async env.py runs its own event loop, so it cannot run on this one.
            await anyio.to_thread.run_sync(upgrade_to_head, settings.database_url)
        database = Database(settings, CONSTRAINT_ERRORS)
        try:
            await ensure_at_head(database.engine)
            if cache_store is not None:
                invalidate_on_commit(database.events, cache_store)
            app.state.database = database
            # Sends what is due at once, then whatever a commit here queues; stops gracefully.
            mail_dispatcher: AbstractAsyncContextManager[Dispatcher | None] = (
                running_dispatcher(settings, woken_by=database.events)
                if settings.MAIL_DISPATCHER_IN_APP
                else nullcontext()
            )
            async with mail_dispatcher as dispatcher:
                app.state.mail_dispatcher = dispatcher
                log.info("quill.started", environment=settings.ENVIRONMENT.value)
                yield
        finally:
            await database.dispose()
            if redis is not None:
                await redis.close()

    app = FastAPI(
        title="Quill",
        version="0.1.0",
        summary="A publishing backend: users, auth and posts.",
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
    )
    app.state.settings = settings
    app.state.surfaces = surfaces
    app.state.password_hasher = PasswordHasher(settings)
    app.state.token_codec = TokenCodec(settings)
    app.state.mail_composer = MailComposer(settings)
    # One pool for the process, shared by the cache and the rate limits; None without REDIS_URL.
    redis = RedisLink(settings) if settings.REDIS_URL else None
    app.state.redis = redis
    cache_store = build_cache_store(settings, redis)
    app.state.cache_store = cache_store

    install_error_handlers(app, surfaces, retry_after_seconds=settings.RETRY_AFTER_SECONDS)
    install_openapi(app, surfaces)
    install_docs(app)
    app.include_router(health_router)
    app.include_router(api_router)
    # Innermost: a hit skips routing, yet passes every layer added after it.
    app.add_middleware(ResponseCacheMiddleware, routes=CACHED_READS, store=cache_store)
    app.add_middleware(RequestContextMiddleware, surfaces=surfaces)
    return app


app = create_app()
