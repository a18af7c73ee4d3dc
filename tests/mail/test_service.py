"""Queuing mail: a row in the caller's unit of work, never a commit of its own."""

import pytest
from fastapi import FastAPI
from sqlalchemy import func, select

from app.core.db import Database
from app.mail import service as mail_service
from app.models import OutboxMessage, OutboxStatus
from tests.helpers import capture_logs, count_rows, open_session

TOKEN = "secret-link-token-0123456789"


async def count_outbox(database: Database) -> int:
    async with open_session(database) as session:
        return await count_rows(session, select(func.count()).select_from(OutboxMessage))


async def test_queue_writes_the_message_in_the_callers_unit_of_work_and_never_commits(
    app: FastAPI,
) -> None:
    database: Database = app.state.database
    composer = app.state.mail_composer

    async with database.transaction() as session:
        message = await mail_service.queue(
            session,
            composer,
            to="ann@example.com",
            template="welcome",
            context={
                "username": "ann",
                "verify_link": composer.verify_email_link(TOKEN),
                "verify_hours": 48,
            },
        )
        assert session.in_transaction()
        invisible_before_commit = await count_outbox(database)

    assert invisible_before_commit == 0
    assert await count_outbox(database) == 1
    assert message.status is OutboxStatus.PENDING
    assert (message.recipient, message.template, message.attempts) == (
        "ann@example.com",
        "welcome",
        0,
    )
    assert message.subject == "Welcome to Quill, ann"
    assert f"verify-email?token={TOKEN}" in message.text_body
    assert f"verify-email?token={TOKEN}" in message.html_body


async def test_queue_logs_which_message_and_never_its_recipient_or_link(app: FastAPI) -> None:
    database: Database = app.state.database

    with capture_logs() as logs:
        async with database.transaction() as session:
            message = await mail_service.queue(
                session,
                app.state.mail_composer,
                to="ann@example.com",
                template="test",
                context={"note": TOKEN},
            )

    [queued] = [entry for entry in logs if entry["event"] == "mail.queued"]
    assert (queued["outbox_id"], queued["template"]) == (message.id, "test")
    assert TOKEN not in repr(logs)
    assert "ann@example.com" not in repr(logs)


@pytest.mark.parametrize(
    "recipient",
    [
        pytest.param("ann@example.com\r\nBcc: eve@example.com", id="header-injection"),
        pytest.param("ann@example.com, eve@example.com", id="two-addresses"),
        pytest.param("Ann <ann@example.com>", id="display-name"),
        pytest.param("ann", id="no-domain"),
        pytest.param("ann@example.com ", id="trailing-space"),
        pytest.param("(note)ann@example.com", id="comment"),
        pytest.param("", id="empty"),
    ],
)
async def test_queue_refuses_anything_but_one_plain_address_and_writes_nothing(
    app: FastAPI, recipient: str
) -> None:
    database: Database = app.state.database

    with pytest.raises(ValueError, match="not a single mail address"):
        async with database.transaction() as session:
            await mail_service.queue(
                session,
                app.state.mail_composer,
                to=recipient,
                template="test",
                context={"note": ""},
            )

    assert await count_outbox(database) == 0
