"""How a message leaves: over SMTP (aiosmtplib), or into a folder of .eml files for development.

What a failure means is decided here too, since it depends on how the message was sent: a refusal
of this message (a 5xx for its recipient or its content) is final; anything else (no connection,
a timeout, a 4xx, a refused login) may pass, and is retried.
"""

import asyncio
import os
import re
from email.message import EmailMessage
from pathlib import Path
from typing import Protocol

import aiosmtplib
import structlog

from app.core.config import MailBackend, Settings
from app.models.outbox_message import LAST_ERROR_MAX_LENGTH

log = structlog.get_logger(__name__)


class MailSender(Protocol):
    async def send(self, message: EmailMessage) -> None:
        """Deliver `message`, or raise."""


class SmtpSender:
    def __init__(self, settings: Settings) -> None:
        self._host = settings.SMTP_HOST
        self._port = settings.smtp_port
        self._user = settings.SMTP_USER
        # Kept as a SecretStr until the moment it is handed to the client: never in a repr.
        self._password = settings.SMTP_PASSWORD
        self._use_tls = settings.SMTP_TLS
        self._start_tls = settings.smtp_starttls
        self._timeout = settings.SMTP_TIMEOUT_SECONDS

    async def send(self, message: EmailMessage) -> None:
        # aiosmtplib's timeout bounds each step; this bounds the whole delivery, which the
        # claim must outlast (MAIL_CLAIM_TIMEOUT_SECONDS > SMTP_TIMEOUT_SECONDS).
        async with asyncio.timeout(self._timeout):
            await aiosmtplib.send(
                message,
                hostname=self._host,
                port=self._port,
                username=self._user or None,
                password=self._password.get_secret_value() if self._user else None,
                use_tls=self._use_tls,
                start_tls=self._start_tls,
                timeout=self._timeout,
            )


class FileSender:
    """Writes each message to `<directory>/<its Message-ID>.eml`, readable by its owner only."""

    def __init__(self, directory: Path) -> None:
        self._directory = directory

    async def send(self, message: EmailMessage) -> None:
        path = await asyncio.to_thread(self._write, message)
        log.info("mail.written", path=str(path))

    def _write(self, message: EmailMessage) -> Path:
        self._directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        local_part = str(message["Message-ID"]).strip("<>").partition("@")[0]
        path = self._directory / f"{re.sub(r'[^A-Za-z0-9.-]', '_', local_part)}.eml"
        # Written aside and moved into place: a reader never sees half a message.
        partial = path.with_name(f".{path.name}.partial")
        descriptor = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "wb") as eml:
            eml.write(message.as_bytes())
        partial.replace(path)
        return path


def build_sender(settings: Settings) -> MailSender:
    if settings.mail_backend is MailBackend.SMTP:
        return SmtpSender(settings)
    return FileSender(settings.mail_file_dir)


def is_final(error: BaseException) -> bool:
    """Whether the server refused this very message for good: trying again cannot help."""
    if isinstance(error, aiosmtplib.SMTPRecipientsRefused):
        return all(_is_permanent(refusal.code) for refusal in error.recipients)
    if isinstance(error, aiosmtplib.SMTPRecipientRefused | aiosmtplib.SMTPDataError):
        return _is_permanent(error.code)
    return False


def describe_failure(error: BaseException) -> str:
    """The kind of a failure, for the outbox and the logs: its class and SMTP codes, never its
    text (a server's reply may quote the message or the address)."""
    codes: list[int] = []
    if isinstance(error, aiosmtplib.SMTPRecipientsRefused):
        codes = [refusal.code for refusal in error.recipients]
    elif isinstance(error, aiosmtplib.SMTPResponseException):
        codes = [error.code]
    description = " ".join([type(error).__name__, *map(str, codes)])
    return description[:LAST_ERROR_MAX_LENGTH]


def _is_permanent(code: int) -> bool:
    return 500 <= code < 600
