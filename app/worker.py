"""The mail dispatcher as a process of its own: `python -m app.worker`.

For deployments that run it apart from the web workers (MAIL_DISPATCHER_IN_APP=false there); it
may also run beside them, on as many machines as wanted. It reads the same settings, and commits
through the same unit of work, as the app. SIGTERM or SIGINT stops it once the sends in progress
are done; a second signal stops it at once (their claims expire, and another dispatcher sends).
"""

import asyncio
import signal
import sys

import structlog

from app.core.config import Settings, get_settings
from app.core.db import Database
from app.core.logging import configure_logging
from app.core.migrations import DatabaseNotMigrated, ensure_at_head, upgrade_to_head
from app.mail.dispatcher import Dispatcher
from app.mail.senders import build_sender

log = structlog.get_logger(__name__)

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


async def run_worker(settings: Settings) -> None:
    """Dispatch mail until SIGTERM or SIGINT."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()

    def request_stop(received: signal.Signals) -> None:
        log.info("worker.stopping", signal=received.name)
        stop.set()
        for number in STOP_SIGNALS:
            # The next signal acts as if we had never caught one: it ends the process now.
            loop.remove_signal_handler(number)

    if settings.auto_migrate:
        # Alembic's async env.py runs its own event loop, so it cannot run on this one.
        await asyncio.to_thread(upgrade_to_head, settings.database_url)
    database = Database(settings)
    try:
        await ensure_at_head(database.engine)
        for number in STOP_SIGNALS:
            loop.add_signal_handler(number, request_stop, number)
        dispatcher = Dispatcher(settings, database, build_sender(settings))
        dispatcher.start()
        log.info("worker.started", mail_backend=settings.mail_backend.value)
        await stop.wait()
        await dispatcher.stop()
    finally:
        await database.dispose()
        for number in STOP_SIGNALS:
            loop.remove_signal_handler(number)
    log.info("worker.stopped")


def main() -> int:
    settings = get_settings()
    configure_logging(settings)
    try:
        asyncio.run(run_worker(settings))
    except DatabaseNotMigrated as exc:
        print(f"Not started: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:  # a second SIGINT: stopped at once
        return 130
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
