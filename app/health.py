"""GET /health (liveness: the process answers) and GET /ready (readiness: what it needs answers)."""

import asyncio
from collections.abc import Awaitable, Callable
from typing import Literal

import structlog
from fastapi import APIRouter, Request
from pydantic import BaseModel
from sqlalchemy import text

from app.core.db import Database
from app.core.errors import NotReady
from app.core.problem_details import problem_responses
from app.core.redis import RedisLink

log = structlog.get_logger(__name__)

router = APIRouter(tags=["health"])

# Each check's bound: a load balancer's probe must get an answer, even from a dead dependency.
READY_CHECK_TIMEOUT_SECONDS = 2.0


class Health(BaseModel):
    status: Literal["ok"] = "ok"


class Readiness(BaseModel):
    status: Literal["ok"] = "ok"
    # What was checked: the database, and Redis when one is configured.
    checked: list[Literal["database", "redis"]]


@router.get("/health")
async def health() -> Health:
    """Liveness: the process answers. It does not touch the database."""
    return Health()


async def database_answers(database: Database) -> bool:
    # Read-only: on SQLite a writer's transaction would queue behind every other writer.
    async with database.transaction(read_only=True) as session:
        await session.execute(text("SELECT 1"))
    return True


async def _answers(component: str, check: Callable[[], Awaitable[bool]]) -> bool:
    try:
        async with asyncio.timeout(READY_CHECK_TIMEOUT_SECONDS):
            return await check()
    except Exception as exc:
        # The type only: a driver's message may quote a URL with its password.
        log.warning("ready.check_failed", component=component, error=type(exc).__name__)
        return False


@router.get("/ready", responses=problem_responses(503))
async def ready(request: Request) -> Readiness:
    """Readiness: the database answers, and Redis too when one is configured (503 otherwise,
    naming each that does not in `failed`)."""
    database: Database = request.app.state.database
    redis: RedisLink | None = request.app.state.redis
    checks: dict[Literal["database", "redis"], Callable[[], Awaitable[bool]]] = {
        "database": lambda: database_answers(database)
    }
    if redis is not None:
        checks["redis"] = redis.ping
    results = await asyncio.gather(*(_answers(name, check) for name, check in checks.items()))
    failed = [name for name, answered in zip(checks, results, strict=True) if not answered]
    if failed:
        raise NotReady(failed)
    return Readiness(checked=list(checks))
