"""A real SMTP server for the tests: aiosmtpd on a loopback port, in a thread of its own, keeping
every message it accepts. It can be down (not yet started, or stopped) and come up again on the
same port, refuse chosen recipients, hold a delivery until told, speak STARTTLS or TLS, and
require a login."""

import asyncio
import ssl
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

from tests.quill_process import free_port

WAIT_SECONDS = 30.0


@dataclass(frozen=True)
class ReceivedMail:
    mail_from: str
    rcpt_tos: tuple[str, ...]
    message: EmailMessage
    login: str | None

    @property
    def message_id(self) -> str:
        return str(self.message["Message-ID"])

    @property
    def text(self) -> str:
        part = self.message.get_body(preferencelist=("plain",))
        assert part is not None
        return str(part.get_content())


@dataclass
class SmtpBehaviour:
    """What the server does beyond accepting everything."""

    # Recipient address -> the reply to its RCPT TO ("550 5.1.1 No such user").
    refusals: dict[str, str] = field(default_factory=dict)
    # The reply to every DATA instead of accepting it ("554 5.7.1 Rejected as spam").
    content_refusal: str | None = None
    # While clear, a message's DATA is taken but not answered.
    answering: threading.Event = field(default_factory=threading.Event)
    # Set when a DATA arrives (whether or not it is answered yet).
    data_arrived: threading.Event = field(default_factory=threading.Event)

    def __post_init__(self) -> None:
        self.answering.set()


class RecordingHandler:
    def __init__(self, behaviour: SmtpBehaviour) -> None:
        self.behaviour = behaviour
        self.received: list[ReceivedMail] = []

    async def handle_RCPT(  # noqa: N802 - aiosmtpd's hook names
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        address: str,
        rcpt_options: list[str],
    ) -> str:
        refusal = self.behaviour.refusals.get(address)
        if refusal is not None:
            return refusal
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(  # noqa: N802
        self, server: SMTP, session: Session, envelope: Envelope
    ) -> str:
        if self.behaviour.content_refusal is not None:
            return self.behaviour.content_refusal
        content = envelope.original_content
        assert isinstance(content, bytes)
        message = BytesParser(policy=policy.default).parsebytes(content)
        assert isinstance(message, EmailMessage)
        auth_data = session.auth_data
        login = auth_data.login.decode() if isinstance(auth_data, LoginPassword) else None
        # Taken as soon as it is in, as a real server queues it: a sender that gives up before
        # the answer cannot know it was.
        self.received.append(
            ReceivedMail(
                mail_from=envelope.mail_from or "",
                rcpt_tos=tuple(envelope.rcpt_tos),
                message=message,
                login=login,
            )
        )
        self.behaviour.data_arrived.set()
        await asyncio.to_thread(self.behaviour.answering.wait)
        return "250 Message accepted for delivery"


def password_authenticator(user: str, password: str) -> Callable[..., AuthResult]:
    def authenticate(
        server: SMTP, session: Session, envelope: Envelope, mechanism: str, auth_data: Any
    ) -> AuthResult:
        valid = isinstance(auth_data, LoginPassword) and (
            auth_data.login.decode(),
            auth_data.password.decode(),
        ) == (user, password)
        return AuthResult(success=valid, handled=False, auth_data=auth_data if valid else None)

    return authenticate


class SmtpServer:
    def __init__(self, **smtp_options: Any) -> None:
        self.port = free_port()
        self.behaviour = SmtpBehaviour()
        self.handler = RecordingHandler(self.behaviour)
        self._smtp_options = smtp_options
        self._controller: Controller | None = None

    @property
    def received(self) -> list[ReceivedMail]:
        return list(self.handler.received)

    def start(self, *, implicit_tls: ssl.SSLContext | None = None) -> None:
        assert self._controller is None, "already started"
        # A fresh controller each time: a stopped one has closed its event loop.
        self._controller = Controller(
            self.handler,
            hostname="127.0.0.1",
            port=self.port,
            server_hostname="localhost",  # else aiosmtpd asks DNS for this machine's name
            ssl_context=implicit_tls,
            **self._smtp_options,
        )
        self._controller.start()

    def stop(self) -> None:
        if self._controller is not None:
            self.behaviour.answering.set()  # a held delivery must not keep the thread
            self._controller.stop()
            self._controller = None

    async def wait_for(self, count: int, *, seconds: float = WAIT_SECONDS) -> list[ReceivedMail]:
        """At least `count` messages received; fails after `seconds` without them."""
        deadline = time.monotonic() + seconds
        while len(self.handler.received) < count:
            assert time.monotonic() < deadline, (
                f"{len(self.handler.received)} of {count} messages arrived in {seconds} s"
            )
            await asyncio.sleep(0.02)
        return self.received
