"""The application: create_app() wires settings, database, middleware, errors and routes."""

from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager, nullcontext

import anyio
import structlog
from fastapi import FastAPI
from starlette.middleware.gzip import GZipMiddleware

from app.api import API_V1_SURFACE, api_router
from app.cached_reads import CACHED_READS, invalidate_on_commit
from app.conduit.router import router as conduit_router
from app.conduit.surface import CONDUIT_SURFACE
from app.constraint_errors import CONSTRAINT_ERRORS
from app.core.body_limit import BodyLimitMiddleware
from app.core.cache import build_cache_store
from app.core.cache_control import CacheHeadersMiddleware
from app.core.config import Settings, get_settings
from app.core.cors import CORSMiddleware
from app.core.db import Database
from app.core.docs import install_docs
from app.core.error_handlers import install_error_handlers
from app.core.hosts import HostCheckMiddleware, HostFreeLocationMiddleware
from app.core.logging import configure_logging
from app.core.metrics import MetricsMiddleware, worker_metrics
from app.core.middleware import RequestContextMiddleware
from app.core.migrations import ensure_at_head, upgrade_to_head
from app.core.openapi import install_openapi
from app.core.passwords import PasswordPolicy
from app.core.rate_limit_middleware import RateLimitMiddleware
from app.core.rate_limits import RateLimits
from app.core.redis import RedisLink
from app.core.response_cache import ResponseCacheMiddleware
from app.core.security import PasswordHasher, TokenCodec
from app.core.security_headers import SecurityHeadersMiddleware
from app.core.surfaces import Surfaces
from app.health import router as health_router
from app.mail.composer import MailComposer
from app.mail.dispatcher import Dispatcher, running_dispatcher
from app.metrics_router import create_metrics_router

log = structlog.get_logger(__name__)

# Responses smaller than this are sent as they are: compressing them saves next to nothing.
GZIP_MINIMUM_BYTES = 1024


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = (settings or get_settings()).with_secret_key()
    configure_logging(settings)
    # Paths outside every surface (/health, a typo) are answered as /api/v1 answers.
    surfaces = Surfaces(default=API_V1_SURFACE)
    # The RealWorld ("Conduit") API under /api; /api/v1, the longer prefix, stays native.
    surfaces.register(CONDUIT_SURFACE)

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
            with worker_metrics(database.engine):
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
        # Quill's metrics are Prometheus' (app/core/metrics.py). FastAPI's OpenTelemetry hooks,
        # left on, look for configured providers on every request (measured: 15 us of a 133 us
        # cached read).
        telemetry={"tracing": False, "metrics": False, "logs": False},
    )
    app.state.settings = settings
    app.state.surfaces = surfaces
    app.state.password_hasher = PasswordHasher(settings)
    app.state.password_policy = PasswordPolicy(settings)
    app.state.token_codec = TokenCodec(settings)
    app.state.mail_composer = MailComposer(settings)
    # One pool for the process, shared by the cache and the rate limits; None without REDIS_URL.
    redis = RedisLink(settings) if settings.REDIS_URL else None
    app.state.redis = redis
    cache_store = build_cache_store(settings, redis)
    app.state.cache_store = cache_store
    app.state.rate_limits = RateLimits(settings, redis)

    install_error_handlers(app, surfaces, retry_after_seconds=settings.RETRY_AFTER_SECONDS)
    install_openapi(app, surfaces)
    install_docs(app)
    app.include_router(health_router)
    app.include_router(create_metrics_router(settings.METRICS_ALLOWED_IPS))
    app.include_router(api_router)
    app.include_router(conduit_router)
    # Outermost last. A request meets them top to bottom, its answer leaves bottom to top.
    # Innermost: the headers the route declared, so the cache keeps them with the answer.
    app.add_middleware(CacheHeadersMiddleware)
    # A hit skips routing, yet passes every layer added after it.
    app.add_middleware(ResponseCacheMiddleware, routes=CACHED_READS, store=cache_store)
    # Outside the cache, which keeps answers as the app made them, whatever the client accepts.
    app.add_middleware(GZipMiddleware, minimum_size=GZIP_MINIMUM_BYTES)
    # Outside the cache: hits are counted too.
    app.add_middleware(
        RateLimitMiddleware,
        rate_limits=app.state.rate_limits,
        codec=app.state.token_codec,
        surfaces=surfaces,
        path_prefix="/api",
    )
    app.add_middleware(
        BodyLimitMiddleware, max_body_bytes=settings.MAX_REQUEST_BODY_BYTES, surfaces=surfaces
    )
    if settings.cors_origins:
        # Inside the host check: a preflight is answered here, and only for a known host. Around
        # the body limit, the limits and the routes, so that a page can read their errors.
        app.add_middleware(CORSMiddleware, origins=settings.cors_origins, surfaces=surfaces)
    app.add_middleware(HostFreeLocationMiddleware, public_base_url=settings.PUBLIC_BASE_URL)
    app.add_middleware(HostCheckMiddleware, allowed_hosts=settings.allowed_hosts, surfaces=surfaces)
    # Inside RequestContext: it measures every answer, those of the layers above too.
    app.add_middleware(MetricsMiddleware)
    # The request id of every answer, the host's refusal and the last-resort 500 included.
    app.add_middleware(RequestContextMiddleware, surfaces=surfaces)
    # Around everything, so that every answer carries them.
    app.add_middleware(SecurityHeadersMiddleware)
    return app


app = create_app()
