"""The dispatcher: sends what the outbox holds, in the app (lifespan) or in `python -m app.worker`.

One loop: claim the due messages in a short transaction, send them with no transaction open,
record each result in a transaction of its own; then sleep until the next message is due, until a
commit in this process wakes it, or MAIL_POLL_INTERVAL_SECONDS at most (mail queued by another
process). It starts by sending everything due, so nothing committed before a crash or a deploy
waits. Several dispatchers, in as many processes and machines as there are, share the work: a
message is claimed by one of them at a time (see repository.claim_due).

Delivery is at least once: a dispatcher killed after the server took a message but before the
result was recorded leaves the claim to expire, and the message is sent again, with the same
Message-ID, so the receiving side can tell.
"""

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import structlog
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.config import Settings
from app.core.db import Database
from app.core.db_errors import DATABASE_ERRORS, describe_database_error, is_unavailable
from app.core.events import EventBus
from app.mail import repository
from app.mail.events import MailQueued
from app.mail.mime import to_email_message
from app.mail.senders import MailSender, build_sender, describe_failure, is_final
from app.models import OutboxMessage

log = structlog.get_logger(__name__)

# Sent messages past their retention are looked for at start-up and then this often.
PURGE_INTERVAL_SECONDS = 3600.0
# Due messages that another dispatcher is claiming this instant: look again shortly.
CLAIMED_ELSEWHERE_SECONDS = 0.1
# The in-app dispatcher's own pool: its few short transactions never take a connection a
# request waits for.
IN_APP_POOL = {"DB_POOL_SIZE": 2, "DB_MAX_OVERFLOW": 2}


def retry_delay(attempts: int, *, base_seconds: float, max_seconds: float) -> float:
    """How long a message waits after its `attempts`-th attempt failed: base, 2 base, 4 base..."""
    exponent = min(attempts - 1, 32)  # beyond that, the cap has long been reached
    return float(min(base_seconds * 2**exponent, max_seconds))


class Dispatcher:
    def __init__(self, settings: Settings, database: Database, sender: MailSender) -> None:
        self._database = database
        self._sender = sender
        self._mail_from = settings.MAIL_FROM
        self._max_attempts = settings.MAIL_MAX_ATTEMPTS
        self._batch_size = settings.MAIL_BATCH_SIZE
        self._claim_timeout = timedelta(seconds=settings.MAIL_CLAIM_TIMEOUT_SECONDS)
        self._retry_base_seconds = settings.MAIL_RETRY_BASE_SECONDS
        self._retry_max_seconds = settings.MAIL_RETRY_MAX_SECONDS
        self._poll_seconds = settings.MAIL_POLL_INTERVAL_SECONDS
        self._retention = timedelta(seconds=settings.MAIL_RETENTION_SECONDS)
        # A send in progress may take SMTP_TIMEOUT_SECONDS; stopping waits that long for it.
        self._stop_grace_seconds = settings.SMTP_TIMEOUT_SECONDS + 5
        self._wake = asyncio.Event()
        self._stopping = False
        self._task: asyncio.Task[None] | None = None
        self._next_purge = 0.0
        self._database_down = False
        self._sleeping = False

    def wake(self) -> None:
        """Look for due messages now (something was just committed)."""
        self._wake.set()

    @property
    def sleeping(self) -> bool:
        """Whether it waits for the next due time, a wake-up or its next poll."""
        return self._sleeping

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="mail-dispatcher")

    async def stop(self) -> None:
        """Stop once the sends in progress are done; past the grace, abandon them to their claims'
        expiry (another dispatcher, or the next start, sends them)."""
        assert self._task is not None, "stop() of a dispatcher that was never started"
        self._stopping = True
        self._wake.set()
        done, _pending = await asyncio.wait({self._task}, timeout=self._stop_grace_seconds)
        if not done:
            log.warning("mail.dispatcher_stop_abandoned_sends")
            self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        self._task = None

    async def _run(self) -> None:
        log.info("mail.dispatcher_started")
        while not self._stopping:
            self._wake.clear()
            try:
                delay = await self._step()
            except DATABASE_ERRORS as exc:
                self._report_database_error(exc)
                delay = self._poll_seconds
            except Exception:
                log.exception("mail.dispatcher_failed")
                delay = self._poll_seconds
            else:
                if self._database_down:
                    self._database_down = False
                    log.info("mail.database_available")
            if delay > 0 and not self._stopping:
                self._sleeping = True
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(delay):
                        await self._wake.wait()
                self._sleeping = False
        log.info("mail.dispatcher_stopped")

    async def _step(self) -> float:
        """Send one batch if anything is due; how long to sleep before the next step."""
        now = datetime.now(UTC)
        loop_time = asyncio.get_running_loop().time()
        purge = False
        async with self._database.transaction(read_only=True) as session:
            next_due = await repository.next_due_at(session)
            if loop_time >= self._next_purge:
                self._next_purge = loop_time + PURGE_INTERVAL_SECONDS
                purge = await repository.has_sent_before(session, now - self._retention)
        if purge:
            await self._purge(now)
        if next_due is None or next_due > now:
            until_due = (next_due - now).total_seconds() if next_due else self._poll_seconds
            return min(until_due, self._poll_seconds)
        claimed = await self._claim(now)
        if not claimed:
            return CLAIMED_ELSEWHERE_SECONDS
        await asyncio.gather(*(self._deliver(message) for message in claimed))
        return 0.0

    async def _purge(self, now: datetime) -> None:
        async with self._database.transaction() as session:
            purged = await repository.purge_sent_before(session, now - self._retention)
        log.info("mail.purged", messages=purged)

    async def _claim(self, now: datetime) -> list[OutboxMessage]:
        async with self._database.transaction() as session:
            abandoned = await repository.fail_abandoned(
                session, now=now, max_attempts=self._max_attempts
            )
            claimed = await repository.claim_due(
                session,
                now=now,
                claimed_until=now + self._claim_timeout,
                claim_token=uuid.uuid4().hex,
                limit=self._batch_size,
                max_attempts=self._max_attempts,
            )
        for outbox_id in abandoned:
            log.error("mail.failed", outbox_id=outbox_id, error="ClaimExpired")
        return claimed

    async def _deliver(self, message: OutboxMessage) -> None:
        """Send one claimed message and record how it went; never raises but to be cancelled."""
        assert message.claim_token is not None
        try:
            await self._sender.send(to_email_message(message, sender=self._mail_from))
        except Exception as exc:
            failure: Exception | None = exc
        else:
            failure = None
        try:
            async with self._database.transaction() as session:
                if failure is None:
                    recorded = await repository.mark_sent(
                        session,
                        message.id,
                        claim_token=message.claim_token,
                        now=datetime.now(UTC),
                    )
                else:
                    recorded = await self._record_failure(session, message, failure)
        except DATABASE_ERRORS as exc:
            # The claim runs out and the message is sent again: at least once, never lost.
            log.warning(
                "mail.result_not_recorded",
                outbox_id=message.id,
                sent=failure is None,
                **describe_database_error(exc),
            )
            return
        if not recorded:
            log.warning("mail.claim_lost", outbox_id=message.id)
        elif failure is None:
            log.info(
                "mail.sent",
                outbox_id=message.id,
                template=message.template,
                attempts=message.attempts,
            )

    async def _record_failure(
        self, session: AsyncSession, message: OutboxMessage, failure: Exception
    ) -> bool:
        assert message.claim_token is not None
        error = describe_failure(failure)
        final = is_final(failure)
        if final or message.attempts >= self._max_attempts:
            log.error(
                "mail.failed",
                outbox_id=message.id,
                template=message.template,
                attempts=message.attempts,
                error=error,
                refused=final,
            )
            return await repository.mark_failed(
                session, message.id, claim_token=message.claim_token, error=error
            )
        delay = retry_delay(
            message.attempts,
            base_seconds=self._retry_base_seconds,
            max_seconds=self._retry_max_seconds,
        )
        log.warning(
            "mail.retry",
            outbox_id=message.id,
            template=message.template,
            attempts=message.attempts,
            error=error,
            retry_in_seconds=delay,
        )
        return await repository.mark_retry(
            session,
            message.id,
            claim_token=message.claim_token,
            at=datetime.now(UTC) + timedelta(seconds=delay),
            error=error,
        )

    def _report_database_error(self, error: Exception) -> None:
        if not is_unavailable(error):
            log.exception("mail.dispatcher_failed", **describe_database_error(error))
        elif not self._database_down:
            self._database_down = True
            log.warning("mail.database_unavailable", **describe_database_error(error))


@contextlib.asynccontextmanager
async def running_dispatcher(
    settings: Settings, *, woken_by: EventBus
) -> AsyncIterator[Dispatcher]:
    """A dispatcher on a small database pool of its own, running until the block ends.

    `woken_by`: the bus of the app's units of work; a commit that queued mail wakes it at once.
    """
    database = Database(settings.model_copy(update=IN_APP_POOL))
    dispatcher = Dispatcher(settings, database, build_sender(settings))
    woken_by.subscribe(MailQueued, lambda _queued: dispatcher.wake())
    dispatcher.start()
    try:
        yield dispatcher
    finally:
        try:
            await dispatcher.stop()
        finally:
            await database.dispose()
