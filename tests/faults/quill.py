"""Quill as the fault tests run it, and what its database holds afterwards."""

import asyncio
import secrets
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from tests.quill_process import QuillProcess, running_quill, started_workers

# Several worker processes (one a core here), each with its own pools, limits and mail dispatcher.
WORKERS = 2
# Far above what the traffic sends (every request comes from 127.0.0.1): raised, not turned off,
# so that every request still passes through the limits.
UNREACHED_RATE_LIMIT = "1000000/minute"


def quill_settings(database_url: str, redis_url: str, mail_dir: Path) -> dict[str, str]:
    """Production settings, but for cheap password hashes, rate limits the traffic never
    reaches, and mail written to `mail_dir` on short clocks: a failed send is retried within
    2 s, and a claim that a stopped dispatcher left ends after 5 s (not 60)."""
    return {
        "ENVIRONMENT": "production",
        "LOG_JSON": "true",
        "DATABASE_URL": database_url,
        "REDIS_URL": redis_url,
        "SECRET_KEY": secrets.token_urlsafe(48),
        "WEB_CONCURRENCY": str(WORKERS),
        "PASSWORD_HASH_TIME_COST": "1",
        "PASSWORD_HASH_MEMORY_COST_KIB": "8",
        "PASSWORD_HASH_PARALLELISM": "1",
        "RATE_LIMIT_DEFAULT": UNREACHED_RATE_LIMIT,
        "RATE_LIMIT_LOGIN_ACCOUNT": UNREACHED_RATE_LIMIT,
        "RATE_LIMIT_LOGIN_ADDRESS": UNREACHED_RATE_LIMIT,
        "RATE_LIMIT_REGISTER_ADDRESS": UNREACHED_RATE_LIMIT,
        "MAIL_BACKEND": "file",
        "MAIL_FILE_DIR": str(mail_dir),
        "MAIL_RETRY_BASE_SECONDS": "1",
        "MAIL_RETRY_MAX_SECONDS": "2",
        "MAIL_MAX_ATTEMPTS": "100",
        "MAIL_POLL_INTERVAL_SECONDS": "1",
        "SMTP_TIMEOUT_SECONDS": "2",
        "MAIL_CLAIM_TIMEOUT_SECONDS": "5",
    }


@contextmanager
def serving(
    workdir: Path, settings: Mapping[str, str], *, bytecode_cache: Path
) -> Iterator[QuillProcess]:
    """Quill on these settings with WORKERS workers, from the moment each has started.

    uvicorn kills a worker that has not answered its health check within 5 s of starting, and
    starts another. Where PYTHONDONTWRITEBYTECODE is set, every start compiles every module
    Quill imports, which on a loaded machine takes longer than that: the workers compile them
    once into `bytecode_cache` instead (outside the checkout), and later starts reuse them.
    """
    environment = {
        **settings,
        "PYTHONDONTWRITEBYTECODE": "",
        "PYTHONPYCACHEPREFIX": str(bytecode_cache),
    }
    with running_quill(
        workdir,
        environment,
        workers=WORKERS,
        started=lambda log: len(started_workers(log)) >= WORKERS,
    ) as quill:
        yield quill


def query_column(database_url: str, statement: str) -> list[object]:
    """The first column of `statement`'s rows, read with a connection of its own."""

    async def read() -> list[object]:
        engine = create_async_engine(database_url)
        try:
            async with engine.connect() as connection:
                return list((await connection.execute(text(statement))).scalars())
        finally:
            await engine.dispose()

    return asyncio.run(read())


def stored_titles(database_url: str) -> set[str]:
    return {str(title) for title in query_column(database_url, "SELECT title FROM posts")}


def stored_emails(database_url: str) -> set[str]:
    return {str(email) for email in query_column(database_url, "SELECT email FROM users")}
