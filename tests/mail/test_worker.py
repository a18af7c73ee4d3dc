"""`python -m app.worker`, as a process of its own: it sends what is committed, and stops on
SIGTERM once the send in progress is done."""

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from app import worker
from app.core.config import Settings
from app.core.db import Database
from app.models import OutboxStatus
from tests.mail.conftest import eventually, outbox_row, queue_committed, smtp_settings
from tests.mail.smtp_server import SmtpServer
from tests.quill_process import PROJECT_ROOT
from tests.test_cli import fresh_sqlite_settings

# What the test process's own environment must not lend the worker: the test sets its own.
_TEST_ONLY_VARIABLES = {"SECRET_KEY", "DATA_DIR", "DATABASE_URL", "ENVIRONMENT", "REDIS_URL"}


def worker_environment(database_url: str, data_dir: Path, smtp: SmtpServer) -> dict[str, str]:
    environment = {
        key: value for key, value in os.environ.items() if key not in _TEST_ONLY_VARIABLES
    }
    environment.update(
        PYTHONPATH=str(PROJECT_ROOT),
        ENVIRONMENT="test",
        SECRET_KEY="test-secret-key-that-is-long-enough-for-hs256",
        DATA_DIR=str(data_dir),
        DATABASE_URL=database_url,
        AUTO_MIGRATE="false",
        MAIL_BACKEND="smtp",
        SMTP_HOST="127.0.0.1",
        SMTP_PORT=str(smtp.port),
        SMTP_STARTTLS="false",
        # Nothing wakes a process apart but its polls.
        MAIL_POLL_INTERVAL_SECONDS="0.1",
    )
    return environment


@contextmanager
def running_worker(environment: dict[str, str], log: Path) -> Iterator[subprocess.Popen[bytes]]:
    """The worker, its output in a file (a pipe nobody reads would stall it); killed at the end
    if it is still running then."""
    with log.open("wb") as output:
        process = subprocess.Popen(
            [sys.executable, "-m", "app.worker"],
            cwd=log.parent,
            env=environment,
            stdout=output,
            stderr=subprocess.STDOUT,
        )
        try:
            yield process
        finally:
            if process.poll() is None:
                process.kill()
            process.wait(timeout=30)


async def exit_code(process: subprocess.Popen[bytes], *, seconds: float = 30) -> int:
    deadline = time.monotonic() + seconds
    while (code := process.poll()) is None:
        assert time.monotonic() < deadline, f"the worker still runs after {seconds} s"
        await asyncio.sleep(0.05)
    return code


async def test_the_worker_sends_what_was_committed_and_stops_on_sigterm_after_its_send(
    settings: Settings, smtp_server: SmtpServer, tmp_path: Path
) -> None:
    database = Database(settings)
    log = tmp_path / "worker.log"
    try:
        before_start = await queue_committed(database, settings, note="before")
        environment = worker_environment(settings.database_url, tmp_path / "data", smtp_server)
        with running_worker(environment, log) as process:
            await eventually(
                lambda: outbox_row(database, before_start.id),
                lambda row: row.status is OutboxStatus.SENT,
            )
            # Held by the server: the worker is sending it when it is told to stop.
            smtp_server.behaviour.answering.clear()
            smtp_server.behaviour.data_arrived.clear()
            while_running = await queue_committed(database, settings, note="while running")
            assert await asyncio.to_thread(smtp_server.behaviour.data_arrived.wait, 30)
            process.send_signal(signal.SIGTERM)
            await asyncio.sleep(0.2)
            still_sending = process.poll() is None
            smtp_server.behaviour.answering.set()
            code = await exit_code(process)
        rows = [await outbox_row(database, queued.id) for queued in (before_start, while_running)]
    finally:
        await database.dispose()

    output = log.read_text()
    assert code == 0, output
    assert still_sending, output
    assert [mail.message_id for mail in smtp_server.received] == [
        before_start.message_id,
        while_running.message_id,
    ]
    assert [row.status for row in rows] == [OutboxStatus.SENT, OutboxStatus.SENT]
    assert "worker.stopping" in output
    assert "signal=SIGTERM" in output
    assert "worker.stopped" in output


async def test_the_worker_stops_on_sigint_as_on_sigterm(
    settings: Settings, smtp_server: SmtpServer
) -> None:
    # In this process: the test's event loop runs in the main thread, which signals reach.
    # Migrating at start-up, as on SQLite by default: the test's database is at head already.
    worker_settings = smtp_settings(
        settings, smtp_server, MAIL_POLL_INTERVAL_SECONDS=0.05, AUTO_MIGRATE=True
    )
    database = Database(settings)
    try:
        queued = await queue_committed(database, settings)
        running = asyncio.create_task(worker.run_worker(worker_settings))
        # Sent: the worker's signal handlers are in place (they come before its dispatcher).
        [mail] = await smtp_server.wait_for(1)
        os.kill(os.getpid(), signal.SIGINT)
        await asyncio.wait_for(running, timeout=30)
        row = await outbox_row(database, queued.id)
    finally:
        await database.dispose()

    assert mail.message_id == queued.message_id
    assert row.status is OutboxStatus.SENT


async def test_the_worker_refuses_a_database_behind_the_latest_migration(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    empty = fresh_sqlite_settings(tmp_path, AUTO_MIGRATE=False)
    monkeypatch.setattr(worker, "get_settings", lambda: empty)

    # main() runs its own event loop (asyncio.run): in a thread, beside the test's.
    exit_code = await asyncio.to_thread(worker.main)

    assert exit_code == 1
    error = capsys.readouterr().err
    assert "Not started:" in error
    assert "alembic upgrade head" in error
