"""The mail commands of app/cli.py: list the failed messages, and give them back to the
dispatchers."""

import asyncio
from pathlib import Path

import pytest
from sqlalchemy import update

from app import cli
from app.core.config import Settings
from app.core.db import Database
from app.main import create_app
from app.models import OutboxMessage, OutboxStatus
from tests.conftest import Serve
from tests.helpers import open_session
from tests.mail.conftest import database_of, eventually, outbox_row, queue_committed, smtp_settings
from tests.mail.smtp_server import SmtpServer
from tests.test_cli import fresh_sqlite_settings


async def run_command(monkeypatch: pytest.MonkeyPatch, settings: Settings, *argv: str) -> int:
    """Run a command as from a shell; main() calls asyncio.run, so it runs in a thread."""
    monkeypatch.setattr(cli, "get_settings", lambda: settings)
    return await asyncio.to_thread(cli.main, list(argv))


async def queue_failed(database: Database, settings: Settings, to: str) -> OutboxMessage:
    message = await queue_committed(database, settings, to=to)
    async with open_session(database) as session:
        await session.execute(
            update(OutboxMessage)
            .where(OutboxMessage.id == message.id)
            .values(status=OutboxStatus.FAILED, attempts=10, last_error="SMTPConnectError")
        )
        await session.commit()
    return message


async def test_a_message_out_of_attempts_is_listed_and_sent_once_retried(
    settings: Settings,
    smtp_down: SmtpServer,
    serve: Serve,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    mail_settings = smtp_settings(settings, smtp_down, MAIL_MAX_ATTEMPTS=2)
    app = create_app(mail_settings)
    async with serve(app):
        queued = await queue_committed(database_of(app), mail_settings, to="ann@example.com")
        await eventually(
            lambda: outbox_row(database_of(app), queued.id),
            lambda row: row.status is OutboxStatus.FAILED,
        )

    listed = await run_command(monkeypatch, mail_settings, "list-failed-mail")
    listing = capsys.readouterr().out
    smtp_down.start()
    retried = await run_command(monkeypatch, mail_settings, "retry-failed-mail", str(queued.id))
    retry_output = capsys.readouterr().out
    # Another process's dispatcher finds it at start-up (or at its next poll).
    app = create_app(mail_settings)
    async with serve(app):
        [mail] = await smtp_down.wait_for(1)
        sent = await eventually(
            lambda: outbox_row(database_of(app), queued.id),
            lambda row: row.status is OutboxStatus.SENT,
        )

    assert listed == 0
    [line] = listing.splitlines()
    assert line.split("\t")[0] == str(queued.id)
    assert line.split("\t")[2:] == ["2", "SMTPConnectError", "test", "ann@example.com"]
    assert retried == 0
    assert retry_output == f"Queued again: {queued.id}.\n"
    assert mail.message_id == queued.message_id
    assert sent.attempts == 1


async def test_list_failed_mail_shows_only_failed_messages_oldest_first(
    settings: Settings, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    database = Database(settings)
    try:
        first = await queue_failed(database, settings, "ann@example.com")
        await queue_committed(database, settings, to="pending@example.com")
        second = await queue_failed(database, settings, "bob@example.com")
    finally:
        await database.dispose()

    exit_code = await run_command(monkeypatch, settings, "list-failed-mail")

    lines = capsys.readouterr().out.splitlines()
    assert exit_code == 0
    assert [line.split("\t")[0] for line in lines] == [str(first.id), str(second.id)]
    assert [line.split("\t")[-1] for line in lines] == ["ann@example.com", "bob@example.com"]


async def test_retry_failed_mail_all_gives_every_failed_message_its_attempts_back(
    settings: Settings, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    database = Database(settings)
    try:
        failed = [await queue_failed(database, settings, f"user{n}@example.com") for n in (1, 2)]

        exit_code = await run_command(monkeypatch, settings, "retry-failed-mail", "--all")

        rows = [await outbox_row(database, message.id) for message in failed]
    finally:
        await database.dispose()

    assert exit_code == 0
    assert capsys.readouterr().out == f"Queued again: {failed[0].id}, {failed[1].id}.\n"
    assert [(row.status, row.attempts) for row in rows] == [(OutboxStatus.PENDING, 0)] * 2


async def test_retry_failed_mail_of_a_message_that_has_not_failed_changes_nothing(
    settings: Settings, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    database = Database(settings)
    try:
        pending = await queue_committed(database, settings)

        exit_code = await run_command(monkeypatch, settings, "retry-failed-mail", str(pending.id))

        row = await outbox_row(database, pending.id)
    finally:
        await database.dispose()

    assert exit_code == 1
    assert capsys.readouterr().err.endswith("No such failed message.\n")
    assert (row.status, row.attempts) == (OutboxStatus.PENDING, 0)


def test_retry_failed_mail_needs_an_id_or_all(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as stopped:
        cli.main(["retry-failed-mail"])

    assert stopped.value.code == 2
    assert "outbox_id" in capsys.readouterr().err


def test_the_mail_commands_refuse_a_database_behind_the_latest_migration(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    empty = fresh_sqlite_settings(tmp_path, AUTO_MIGRATE=False)
    monkeypatch.setattr(cli, "get_settings", lambda: empty)

    exit_code = cli.main(["list-failed-mail"])

    assert exit_code == 1
    assert "Not done:" in capsys.readouterr().err


def test_the_mail_commands_report_an_unreachable_database_without_a_traceback(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    # A folder where the database file should be: SQLite cannot open it.
    unreachable = fresh_sqlite_settings(tmp_path).model_copy(
        update={"DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path}"}
    )
    monkeypatch.setattr(cli, "get_settings", lambda: unreachable)

    exit_code = cli.main(["retry-failed-mail", "--all"])

    error = capsys.readouterr().err
    assert exit_code == 1
    assert "Not done: the database is unavailable" in error
    assert "Traceback" not in error
