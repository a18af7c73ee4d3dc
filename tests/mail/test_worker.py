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

from app.core.config import Settings
from app.core.db import Database
from app.models import OutboxStatus
from tests.mail.conftest import outbox_row, queue_committed
from tests.mail.smtp_server import SmtpServer
from tests.quill_process import PROJECT_ROOT

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
        with running_worker(environment, log) as worker:
            await smtp_server.wait_for(1)
            # Held by the server: the worker is sending it when it is told to stop.
            smtp_server.behaviour.answering.clear()
            smtp_server.behaviour.data_arrived.clear()
            while_running = await queue_committed(database, settings, note="while running")
            assert await asyncio.to_thread(smtp_server.behaviour.data_arrived.wait, 30)
            worker.send_signal(signal.SIGTERM)
            await asyncio.sleep(0.2)
            still_sending = worker.poll() is None
            smtp_server.behaviour.answering.set()
            code = await exit_code(worker)
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


async def test_the_worker_refuses_a_database_behind_the_latest_migration(
    smtp_server: SmtpServer, tmp_path: Path
) -> None:
    empty = f"sqlite+aiosqlite:///{tmp_path / 'empty.db'}"
    log = tmp_path / "worker.log"

    with running_worker(worker_environment(empty, tmp_path / "data", smtp_server), log) as worker:
        code = await exit_code(worker)

    output = log.read_text()
    assert code == 1
    assert "Not started:" in output
    assert "alembic upgrade head" in output
