"""Queuing mail, and what an operator does with mail that could not be sent.

`queue` writes the message to the outbox in the caller's unit of work and never commits: if the
unit of work rolls back, there is no message; once it commits, a dispatcher sends it, even if
this process dies the moment after. The commit wakes this process's dispatcher at once.
"""

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from email.errors import HeaderParseError
from email.headerregistry import Address

import structlog
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.events import publish
from app.mail import repository

# The flows' services take a composer (routes get it from MailComposerDep): one import for both.
from app.mail.composer import MailComposer as MailComposer
from app.mail.events import MailQueued
from app.models import OutboxMessage

log = structlog.get_logger(__name__)

FAILED_LIST_LIMIT = 1000


async def queue(
    session: AsyncSession,
    composer: MailComposer,
    *,
    to: str,
    template: str,
    context: Mapping[str, object],
) -> OutboxMessage:
    """Render `template` with `context` for `to`, and put it in the outbox of this unit of work.

    The context often holds a link with a token: it is rendered into the row, never logged.
    """
    _check_recipient(to)
    rendered = composer.render(template, context)
    message = OutboxMessage(
        message_id=composer.new_message_id(),
        template=template,
        recipient=to,
        subject=rendered.subject,
        text_body=rendered.text_body,
        html_body=rendered.html_body,
        next_attempt_at=datetime.now(UTC),
    )
    session.add(message)
    await session.flush()
    publish(session, MailQueued(outbox_id=message.id))
    log.info("mail.queued", outbox_id=message.id, template=template)
    return message


async def list_failed(session: AsyncSession) -> Sequence[OutboxMessage]:
    """The messages that ran out of attempts or were refused for good, oldest first."""
    return await repository.list_failed(session, limit=FAILED_LIST_LIMIT)


async def retry_failed(session: AsyncSession, outbox_id: int | None = None) -> list[int]:
    """Send failed messages again (one, or every one when `outbox_id` is None); their ids.

    Each gets MAIL_MAX_ATTEMPTS new attempts, due at once; a running dispatcher finds them at its
    next look (MAIL_POLL_INTERVAL_SECONDS at most).
    """
    retried = await repository.retry_failed(session, outbox_id=outbox_id, now=datetime.now(UTC))
    log.info("mail.retry_failed", outbox_ids=retried)
    return retried


def _check_recipient(to: str) -> None:
    """A recipient is one plain address: a header cannot be split, nor a second one smuggled in."""
    try:
        address = Address(addr_spec=to)
    except (HeaderParseError, ValueError, IndexError) as exc:
        raise ValueError("not a single mail address") from exc
    if address.addr_spec != to or not address.domain:
        raise ValueError("not a single mail address")
