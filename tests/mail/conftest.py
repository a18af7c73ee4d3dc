"""Mail tests deliver to a real SMTP server (tests/mail/smtp_server.py) on a loopback port."""

import asyncio
import time
from collections.abc import Awaitable, Callable, Iterator
from typing import TypeVar

import pytest
from fastapi import FastAPI
from sqlalchemy import select

from app.core.config import MailBackend, Settings
from app.core.db import Database
from app.mail import service as mail_service
from app.mail.composer import MailComposer
from app.models import OutboxMessage
from tests.helpers import open_session
from tests.mail.smtp_server import WAIT_SECONDS, SmtpServer

T = TypeVar("T")


@pytest.fixture
def smtp_server() -> Iterator[SmtpServer]:
    """A started SMTP server of this test's own; the test may stop and start it again."""
    server = SmtpServer()
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def smtp_down() -> Iterator[SmtpServer]:
    """An SMTP server that is not up (yet): its port refuses connections until it is started."""
    server = SmtpServer()
    try:
        yield server
    finally:
        server.stop()


def smtp_settings(settings: Settings, server: SmtpServer, **overrides: object) -> Settings:
    """Settings that send through `server`, woken by commits only: the poll interval is an hour,
    so a message that arrives was not found by polling. Retries come fast."""
    return settings.model_copy(
        update={
            "MAIL_BACKEND": MailBackend.SMTP,
            "SMTP_HOST": "127.0.0.1",
            "SMTP_PORT": server.port,
            "SMTP_STARTTLS": False,
            "SMTP_TIMEOUT_SECONDS": 10.0,
            "MAIL_CLAIM_TIMEOUT_SECONDS": 30.0,
            "MAIL_POLL_INTERVAL_SECONDS": 3600.0,
            "MAIL_RETRY_BASE_SECONDS": 0.05,
            "MAIL_RETRY_MAX_SECONDS": 0.2,
            **overrides,
        }
    )


async def queue_committed(
    database: Database,
    settings: Settings,
    *,
    to: str = "ann@example.com",
    note: str = "",
) -> OutboxMessage:
    """Queue the test message in a unit of work of `database`, committed."""
    async with database.transaction() as session:
        return await mail_service.queue(
            session, MailComposer(settings), to=to, template="test", context={"note": note}
        )


async def outbox_rows(database: Database) -> list[OutboxMessage]:
    async with open_session(database) as session:
        rows = list(await session.scalars(select(OutboxMessage).order_by(OutboxMessage.id)))
        await session.commit()
        return rows


async def outbox_row(database: Database, outbox_id: int) -> OutboxMessage:
    [row] = [row for row in await outbox_rows(database) if row.id == outbox_id]
    return row


async def eventually(
    read: Callable[[], Awaitable[T]],
    holds: Callable[[T], bool],
    *,
    seconds: float = WAIT_SECONDS,
) -> T:
    """`read()` again and again until `holds` of its result; fails after `seconds`."""
    deadline = time.monotonic() + seconds
    while True:
        value = await read()
        if holds(value):
            return value
        assert time.monotonic() < deadline, f"still {value!r} after {seconds} s"
        await asyncio.sleep(0.02)


def database_of(app: FastAPI) -> Database:
    database: Database = app.state.database
    return database
