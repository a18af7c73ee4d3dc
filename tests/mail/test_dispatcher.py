"""The dispatcher, through the app's lifespan and a real SMTP server: what is committed is sent,
once; what is rolled back never is; crashes, outages and other dispatchers change neither."""

import asyncio
import shutil
import sqlite3
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from fastapi import FastAPI
from sqlalchemy import text, update
from sqlalchemy.engine import make_url
from structlog.typing import EventDict

from app.core.config import Settings
from app.core.db import Database, SessionDep
from app.core.errors import Conflict
from app.mail import repository
from app.mail import service as mail_service
from app.mail.composer import MailComposer
from app.mail.dependencies import MailComposerDep
from app.mail.dispatcher import Dispatcher, retry_delay
from app.mail.senders import SmtpSender
from app.main import create_app
from app.models import OutboxMessage, OutboxStatus
from tests.conftest import Serve
from tests.helpers import capture_logs, open_session
from tests.mail.conftest import (
    database_of,
    eventually,
    outbox_row,
    outbox_rows,
    queue_committed,
    smtp_settings,
)
from tests.mail.smtp_server import SmtpServer


def make_mail_app(settings: Settings) -> FastAPI:
    """The app with a route that queues the test message, then ends as `outcome` says."""
    app = create_app(settings)

    @app.post("/test/mail")
    async def queue_mail(
        session: SessionDep, composer: MailComposerDep, note: str, outcome: str = "commit"
    ) -> int:
        message = await mail_service.queue(
            session, composer, to="ann@example.com", template="test", context={"note": note}
        )
        if outcome == "app_error":
            raise Conflict
        if outcome == "crash":
            raise RuntimeError("the route failed after queuing")
        return message.id

    return app


async def sleeping(app: FastAPI) -> bool:
    dispatcher: Dispatcher = app.state.mail_dispatcher
    return dispatcher.sleeping


async def test_a_committed_message_is_delivered_at_once_woken_by_the_commit_not_by_polling(
    settings: Settings, smtp_server: SmtpServer, serve: Serve
) -> None:
    # The poll interval is an hour: only the commit's wake-up can send it within the wait.
    app = make_mail_app(smtp_settings(settings, smtp_server))

    async with serve(app) as client:
        # Its start-up look is over, and found nothing: it would now sleep for an hour.
        await eventually(lambda: sleeping(app), lambda asleep: asleep)
        response = await client.post("/test/mail", params={"note": "hello"})
        assert response.status_code == 200, response.text
        [mail] = await smtp_server.wait_for(1)
        row = await eventually(
            lambda: outbox_row(database_of(app), response.json()),
            lambda row: row.status is OutboxStatus.SENT,
        )

    assert mail.rcpt_tos == ("ann@example.com",)
    assert mail.message_id == row.message_id
    assert "hello" in mail.text
    assert (row.attempts, row.claim_token, row.last_error) == (1, None, None)
    assert row.sent_at is not None


@pytest.mark.parametrize("outcome", ["app_error", "crash"])
async def test_a_unit_of_work_that_rolls_back_after_queuing_sends_nothing(
    settings: Settings, smtp_server: SmtpServer, serve: Serve, outcome: str
) -> None:
    app = make_mail_app(smtp_settings(settings, smtp_server))

    async with serve(app) as client:
        failed = await client.post("/test/mail", params={"note": "never", "outcome": outcome})
        # A later commit wakes the dispatcher: had the first message been kept, it would go too.
        sent = await client.post("/test/mail", params={"note": "committed"})
        assert sent.status_code == 200, sent.text
        received = await smtp_server.wait_for(1)
        rows = await eventually(
            lambda: outbox_rows(database_of(app)),
            lambda rows: all(row.status is OutboxStatus.SENT for row in rows),
        )

    assert failed.status_code in {409, 500}
    assert [row.id for row in rows] == [sent.json()]
    assert [mail.message_id for mail in received] == [rows[0].message_id]
    assert "never" not in received[0].text


async def test_a_message_committed_while_smtp_is_down_is_delivered_once_when_it_comes_up(
    settings: Settings, smtp_down: SmtpServer, serve: Serve
) -> None:
    mail_settings = smtp_settings(settings, smtp_down, MAIL_MAX_ATTEMPTS=100)
    app = create_app(mail_settings)

    async with serve(app):
        queued = await queue_committed(database_of(app), mail_settings)
        # Two attempts failed, and none is under way (claimed): the next one meets the server.
        down = await eventually(
            lambda: outbox_row(database_of(app), queued.id),
            lambda row: row.attempts >= 2 and row.claim_token is None,
        )
        smtp_down.start()
        [mail] = await smtp_down.wait_for(1)
        sent = await eventually(
            lambda: outbox_row(database_of(app), queued.id),
            lambda row: row.status is OutboxStatus.SENT,
        )
        # Nothing else is due: had the message been sent twice, the second would be in by now.
        assert len(smtp_down.received) == 1

    assert down.status is OutboxStatus.PENDING
    assert down.last_error == "SMTPConnectError"
    assert mail.message_id == queued.message_id
    assert sent.attempts > down.attempts
    assert sent.last_error is None


async def test_a_message_committed_by_a_process_that_never_sent_it_is_sent_at_the_next_start(
    settings: Settings, smtp_server: SmtpServer, serve: Serve
) -> None:
    mail_settings = smtp_settings(settings, smtp_server)
    # The process that committed it had no dispatcher, and is gone before sending anything.
    committing = create_app(mail_settings.model_copy(update={"MAIL_DISPATCHER_IN_APP": False}))
    async with serve(committing):
        assert committing.state.mail_dispatcher is None
        queued = await queue_committed(database_of(committing), mail_settings)
    assert smtp_server.received == []

    # The next process polls once an hour: only its start-up pick-up can send it.
    async with serve(create_app(mail_settings)):
        [mail] = await smtp_server.wait_for(1)

    assert mail.message_id == queued.message_id


async def test_the_claim_of_a_dispatcher_killed_before_sending_is_taken_over_when_it_expires(
    settings: Settings, smtp_server: SmtpServer, serve: Serve
) -> None:
    # The claim outlasts the whole send (1 s), and expires within a second or two.
    mail_settings = smtp_settings(
        settings, smtp_server, MAIL_CLAIM_TIMEOUT_SECONDS=2.0, SMTP_TIMEOUT_SECONDS=1.0
    )
    database = Database(mail_settings)
    try:
        queued = await queue_committed(database, mail_settings)
        # A dispatcher claims the message, and is killed before it sends anything.
        now = datetime.now(UTC)
        async with database.transaction() as session:
            [claimed] = await repository.claim_due(
                session,
                now=now,
                claimed_until=now + timedelta(seconds=mail_settings.MAIL_CLAIM_TIMEOUT_SECONDS),
                claim_token="killed-dispatcher",
                limit=10,
                max_attempts=mail_settings.MAIL_MAX_ATTEMPTS,
            )
    finally:
        await database.dispose()

    # It polls once an hour: it sleeps until the claim ends, and sends then.
    app = create_app(mail_settings)
    async with serve(app):
        [mail] = await smtp_server.wait_for(1)
        row = await eventually(
            lambda: outbox_row(database_of(app), queued.id),
            lambda row: row.status is OutboxStatus.SENT,
        )

    assert claimed.id == queued.id
    assert mail.message_id == queued.message_id
    assert row.attempts == 2


async def test_a_live_claim_of_another_dispatcher_is_left_to_it(
    settings: Settings, smtp_server: SmtpServer, serve: Serve
) -> None:
    mail_settings = smtp_settings(settings, smtp_server)
    app = create_app(mail_settings)
    async with serve(app):
        database = database_of(app)
        async with database.transaction() as session:
            claimed_elsewhere = await mail_service.queue(
                session,
                app.state.mail_composer,
                to="bob@example.com",
                template="test",
                context={"note": ""},
            )
            now = datetime.now(UTC)
            await repository.claim_due(
                session,
                now=now + timedelta(seconds=1),
                claimed_until=now + timedelta(hours=1),
                claim_token="another-dispatcher",
                limit=10,
                max_attempts=10,
            )
        queued = await queue_committed(database, mail_settings)
        [mail] = await smtp_server.wait_for(1)
        left = await outbox_row(database, claimed_elsewhere.id)

    assert mail.message_id == queued.message_id
    assert (left.status, left.claim_token) == (OutboxStatus.PENDING, "another-dispatcher")


async def test_two_dispatchers_on_postgresql_send_each_of_200_messages_exactly_once(
    postgresql_only: None, settings: Settings, smtp_server: SmtpServer
) -> None:
    mail_settings = smtp_settings(settings, smtp_server, MAIL_BATCH_SIZE=5)
    database = Database(mail_settings)
    try:
        async with database.transaction() as session:
            composer = MailComposer(mail_settings)
            queued = [
                await mail_service.queue(
                    session,
                    composer,
                    to=f"user{number}@example.com",
                    template="test",
                    context={"note": ""},
                )
                for number in range(200)
            ]
        # Two processes, each with its own pool and its own From, to tell who sent what.
        first = Database(mail_settings)
        second = Database(mail_settings)
        dispatchers = [
            Dispatcher(
                mail_settings.model_copy(update={"MAIL_FROM": f"dispatcher{number}@example.com"}),
                own_database,
                SmtpSender(mail_settings),
            )
            for number, own_database in enumerate((first, second))
        ]
        for dispatcher in dispatchers:
            dispatcher.start()
        try:
            received = await smtp_server.wait_for(200, seconds=120)
            await eventually(
                lambda: outbox_rows(database),
                lambda rows: all(row.status is OutboxStatus.SENT for row in rows),
            )
        finally:
            for dispatcher in dispatchers:
                await dispatcher.stop()
            await first.dispose()
            await second.dispose()
    finally:
        await database.dispose()

    assert len(smtp_server.received) == 200
    counts = Counter(mail.message_id for mail in received)
    assert set(counts) == {message.message_id for message in queued}
    assert set(counts.values()) == {1}
    senders = Counter(mail.mail_from for mail in received)
    assert set(senders) == {"dispatcher0@example.com", "dispatcher1@example.com"}


async def test_retries_stop_after_max_attempts_and_the_message_is_failed_and_logged(
    settings: Settings, smtp_down: SmtpServer, serve: Serve
) -> None:
    mail_settings = smtp_settings(settings, smtp_down, MAIL_MAX_ATTEMPTS=3)
    app = create_app(mail_settings)

    with capture_logs() as logs:
        async with serve(app):
            queued = await queue_committed(database_of(app), mail_settings)
            failed = await eventually(
                lambda: outbox_row(database_of(app), queued.id),
                lambda row: row.status is OutboxStatus.FAILED,
            )

    assert (failed.attempts, failed.last_error, failed.claim_token) == (3, "SMTPConnectError", None)
    retries = [entry for entry in logs if entry["event"] == "mail.retry"]
    assert [entry["attempts"] for entry in retries] == [1, 2]
    [failure] = [entry for entry in logs if entry["event"] == "mail.failed"]
    assert failure["outbox_id"] == queued.id
    assert failure["attempts"] == 3
    assert failure["log_level"] == "error"


async def test_a_recipient_refused_for_good_fails_at_once_and_one_refused_for_now_is_retried(
    settings: Settings, smtp_server: SmtpServer, serve: Serve
) -> None:
    smtp_server.behaviour.refusals["nobody@example.com"] = "550 5.1.1 No such user"
    smtp_server.behaviour.refusals["busy@example.com"] = "451 4.3.0 Try again later"
    app = create_app(smtp_settings(settings, smtp_server, MAIL_MAX_ATTEMPTS=100))

    async with serve(app):
        database = database_of(app)
        refused = await queue_committed(database, app.state.settings, to="nobody@example.com")
        busy = await queue_committed(database, app.state.settings, to="busy@example.com")
        failed = await eventually(
            lambda: outbox_row(database, refused.id), lambda row: row.status is OutboxStatus.FAILED
        )
        retried = await eventually(
            lambda: outbox_row(database, busy.id), lambda row: row.attempts >= 2
        )
        del smtp_server.behaviour.refusals["busy@example.com"]
        [mail] = await smtp_server.wait_for(1)

    assert (failed.attempts, failed.last_error) == (1, "SMTPRecipientsRefused 550")
    assert retried.status is OutboxStatus.PENDING
    assert retried.last_error == "SMTPRecipientsRefused 451"
    assert mail.message_id == busy.message_id


def test_the_retry_delay_doubles_from_the_base_up_to_the_cap() -> None:
    delays = [retry_delay(attempts, base_seconds=2, max_seconds=600) for attempts in range(1, 12)]

    assert delays == [2, 4, 8, 16, 32, 64, 128, 256, 512, 600, 600]
    assert retry_delay(10_000, base_seconds=2, max_seconds=600) == 600


async def test_sent_messages_past_their_retention_are_deleted_and_no_other(
    settings: Settings, serve: Serve
) -> None:
    retention = timedelta(seconds=settings.MAIL_RETENTION_SECONDS)
    now = datetime.now(UTC)
    database = Database(settings)
    try:
        kept_ids = []
        for status, sent_at in [
            (OutboxStatus.SENT, now - retention - timedelta(hours=1)),  # purged
            (OutboxStatus.SENT, now - retention + timedelta(hours=1)),  # within retention
            (OutboxStatus.FAILED, None),  # old, but an operator may still retry it
        ]:
            message = await queue_committed(database, settings)
            async with open_session(database) as session:
                await session.execute(
                    update(OutboxMessage)
                    .where(OutboxMessage.id == message.id)
                    .values(status=status, sent_at=sent_at, created_at=now - 2 * retention)
                )
                await session.commit()
            kept_ids.append(message.id)
        expired_id = kept_ids.pop(0)
    finally:
        await database.dispose()

    app = create_app(settings)
    async with serve(app):
        rows = await eventually(
            lambda: outbox_rows(database_of(app)),
            lambda rows: expired_id not in {row.id for row in rows},
        )

    assert [row.id for row in rows] == kept_ids


async def test_stopping_waits_for_the_send_in_progress_and_records_it(
    settings: Settings, smtp_server: SmtpServer, serve: Serve
) -> None:
    smtp_server.behaviour.answering.clear()
    app = create_app(smtp_settings(settings, smtp_server))
    running = serve(app)

    await running.__aenter__()
    queued = await queue_committed(database_of(app), app.state.settings)
    assert await asyncio.to_thread(smtp_server.behaviour.data_arrived.wait, 30)
    # The lifespan ends while the server holds the message unanswered.
    ending = asyncio.create_task(running.__aexit__(None, None, None))
    await asyncio.sleep(0.2)
    still_sending = not ending.done()
    smtp_server.behaviour.answering.set()
    await ending

    database = Database(app.state.settings)
    try:
        sent = await outbox_row(database, queued.id)
    finally:
        await database.dispose()
    assert still_sending
    assert sent.status is OutboxStatus.SENT
    assert [mail.message_id for mail in smtp_server.received] == [queued.message_id]


async def test_a_message_whose_last_attempt_died_with_its_dispatcher_is_failed_not_retried(
    settings: Settings, smtp_server: SmtpServer, serve: Serve
) -> None:
    mail_settings = smtp_settings(settings, smtp_server, MAIL_MAX_ATTEMPTS=3)
    database = Database(mail_settings)
    try:
        queued = await queue_committed(database, mail_settings)
        # Claimed for its third and last attempt by a dispatcher that died; the claim has ended.
        async with open_session(database) as session:
            await session.execute(
                update(OutboxMessage)
                .where(OutboxMessage.id == queued.id)
                .values(attempts=3, claim_token="dead", next_attempt_at=datetime.now(UTC))
            )
            await session.commit()
    finally:
        await database.dispose()

    app = create_app(mail_settings)
    with capture_logs() as logs:
        async with serve(app):
            row = await eventually(
                lambda: outbox_row(database_of(app), queued.id),
                lambda row: row.status is OutboxStatus.FAILED,
            )

    assert (row.attempts, row.last_error, row.claim_token) == (3, "ClaimExpired", None)
    assert smtp_server.received == []
    [failure] = [entry for entry in logs if entry["event"] == "mail.failed"]
    assert failure["outbox_id"] == queued.id


async def test_a_database_outage_is_logged_once_and_sending_resumes_when_it_is_back(
    backend: str, settings: Settings, smtp_server: SmtpServer, tmp_path: Path
) -> None:
    if backend != "sqlite":
        pytest.skip("a database file that appears later is SQLite's")
    # Where the dispatcher looks there is no database yet: a folder SQLite cannot open.
    later = tmp_path / "later.db"
    later.mkdir()
    mail_settings = smtp_settings(
        settings,
        smtp_server,
        DATABASE_URL=f"sqlite+aiosqlite:///{later}",
        MAIL_POLL_INTERVAL_SECONDS=0.02,
    )
    database = Database(settings)
    try:
        queued = await queue_committed(database, settings)
    finally:
        await database.dispose()
    unreachable = Database(mail_settings)
    dispatcher = Dispatcher(mail_settings, unreachable, SmtpSender(mail_settings))

    with capture_logs() as logs:
        dispatcher.start()
        try:
            await eventually(
                lambda: _logged(logs, "mail.database_unavailable"), lambda count: count >= 1
            )
            await asyncio.sleep(0.3)  # a dozen more failed looks, none logged
            outage_lines = await _logged(logs, "mail.database_unavailable")
            source = make_url(settings.database_url).database
            assert source is not None
            await asyncio.to_thread(later.rmdir)
            await asyncio.to_thread(shutil.copyfile, source, later)
            [mail] = await smtp_server.wait_for(1)
        finally:
            await dispatcher.stop()
            await unreachable.dispose()

    assert outage_lines == 1
    assert mail.message_id == queued.message_id
    assert await _logged(logs, "mail.database_available") == 1


async def _logged(logs: list[EventDict], event: str) -> int:
    return sum(1 for entry in logs if entry["event"] == event)


async def test_a_message_whose_content_is_refused_for_good_fails_at_once(
    settings: Settings, smtp_server: SmtpServer, serve: Serve
) -> None:
    smtp_server.behaviour.content_refusal = "554 5.7.1 Rejected as spam"
    app = create_app(smtp_settings(settings, smtp_server, MAIL_MAX_ATTEMPTS=100))

    async with serve(app):
        queued = await queue_committed(database_of(app), app.state.settings)
        failed = await eventually(
            lambda: outbox_row(database_of(app), queued.id),
            lambda row: row.status is OutboxStatus.FAILED,
        )

    assert (failed.attempts, failed.last_error) == (1, "SMTPDataError 554")


async def test_a_send_whose_claim_was_taken_over_meanwhile_records_nothing_over_the_new_claim(
    settings: Settings, smtp_server: SmtpServer, serve: Serve
) -> None:
    smtp_server.behaviour.answering.clear()
    app = create_app(smtp_settings(settings, smtp_server))

    with capture_logs() as logs:
        async with serve(app):
            database = database_of(app)
            queued = await queue_committed(database, app.state.settings)
            assert await asyncio.to_thread(smtp_server.behaviour.data_arrived.wait, 30)
            # While the server holds it, the claim ends and another dispatcher takes it over.
            async with open_session(database) as session:
                await session.execute(
                    update(OutboxMessage)
                    .where(OutboxMessage.id == queued.id)
                    .values(claim_token="the-next-dispatcher")
                )
                await session.commit()
            smtp_server.behaviour.answering.set()
            await eventually(lambda: _logged(logs, "mail.claim_lost"), lambda count: count == 1)
            row = await outbox_row(database, queued.id)

    assert (row.status, row.claim_token) == (OutboxStatus.PENDING, "the-next-dispatcher")
    assert not any(entry["event"] == "mail.sent" for entry in logs)


async def test_a_send_whose_result_cannot_be_recorded_is_sent_again_with_the_same_message_id(
    backend: str, settings: Settings, smtp_server: SmtpServer, serve: Serve
) -> None:
    if backend != "sqlite":
        pytest.skip("SQLite's write lock holds the dispatcher's record back")
    smtp_server.behaviour.answering.clear()
    app = create_app(
        smtp_settings(
            settings,
            smtp_server,
            SQLITE_BUSY_TIMEOUT_MS=100,
            SMTP_TIMEOUT_SECONDS=1.0,
            MAIL_CLAIM_TIMEOUT_SECONDS=2.0,
            MAIL_POLL_INTERVAL_SECONDS=0.1,
        )
    )
    path = make_url(settings.database_url).database
    assert path is not None

    with capture_logs() as logs:
        async with serve(app):
            queued = await queue_committed(database_of(app), app.state.settings)
            assert await asyncio.to_thread(smtp_server.behaviour.data_arrived.wait, 30)
            # The server has the message; the database will not take the result.
            writer = sqlite3.connect(path, isolation_level=None)
            try:
                writer.execute("BEGIN IMMEDIATE")
                smtp_server.behaviour.answering.set()
                await eventually(
                    lambda: _logged(logs, "mail.result_not_recorded"), lambda count: count >= 1
                )
            finally:
                writer.close()
            sent = await eventually(
                lambda: outbox_row(database_of(app), queued.id),
                lambda row: row.status is OutboxStatus.SENT,
            )

    # At least once: the receiver gets it twice, and can tell by its Message-ID.
    assert [mail.message_id for mail in smtp_server.received] == [queued.message_id] * 2
    assert sent.attempts == 2


async def test_no_transaction_is_open_while_the_smtp_server_holds_a_message(
    backend: str, settings: Settings, smtp_server: SmtpServer, serve: Serve
) -> None:
    smtp_server.behaviour.answering.clear()
    app = create_app(smtp_settings(settings, smtp_server))

    async with serve(app):
        await queue_committed(database_of(app), app.state.settings)
        assert await asyncio.to_thread(smtp_server.behaviour.data_arrived.wait, 30)
        if backend == "sqlite":
            # A writer gets the lock at once: no transaction of the dispatcher holds it.
            path = make_url(settings.database_url).database
            assert path is not None
            writer = sqlite3.connect(path, isolation_level=None, timeout=0)
            try:
                writer.execute("BEGIN IMMEDIATE")
                writer.execute("ROLLBACK")
            finally:
                writer.close()
        else:
            async with open_session(database_of(app)) as session:
                open_transactions = await session.scalar(_OPEN_TRANSACTIONS)
                await session.commit()
            assert open_transactions == 0
        smtp_server.behaviour.answering.set()
        await smtp_server.wait_for(1)


_OPEN_TRANSACTIONS = text(
    "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
    " AND state LIKE 'idle in transaction%' AND pid <> pg_backend_pid()"
)
