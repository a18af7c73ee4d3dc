"""What the account flows' tests read from the mail Quill delivered to their SMTP server: who got
what, and the token of the link a message carries, as a person would follow it.

Tokens are only ever read from a delivered message, never from the database: a test passes only
if the link that was mailed is the one that works.
"""

import re
from urllib.parse import parse_qs, urlsplit

from fastapi import FastAPI

from app.models import OutboxStatus
from tests.mail.conftest import database_of, eventually, outbox_rows
from tests.mail.smtp_server import ReceivedMail, SmtpServer

VERIFY_EMAIL_PATH = "/verify-email"
RESET_PASSWORD_PATH = "/reset-password"
_FRONTEND_LINK = re.compile(r"http://localhost:3000/[^\s\"<>]*")


async def delivered(app: FastAPI, server: SmtpServer) -> list[ReceivedMail]:
    """Every message committed so far, once the dispatcher has sent them all, in the order they
    were queued (a dispatcher may send one batch in any order)."""
    rows = await eventually(
        lambda: outbox_rows(database_of(app)),
        lambda rows: all(row.status is OutboxStatus.SENT for row in rows),
    )
    received = {mail.message_id: mail for mail in await server.wait_for(len(rows))}
    return [received[row.message_id] for row in rows]


async def outbox_recipients(app: FastAPI) -> list[str]:
    """To whom every committed message goes (or went), in the order they were queued."""
    return [row.recipient for row in await outbox_rows(database_of(app))]


def mail_to(received: list[ReceivedMail], address: str) -> list[ReceivedMail]:
    return [mail for mail in received if mail.rcpt_tos == (address,)]


def link_token(mail: ReceivedMail, path: str) -> str:
    """The `token` of the one link to the frontend's `path` that the message carries, the same in
    its text and its HTML part."""
    html_part = mail.message.get_body(preferencelist=("html",))
    assert html_part is not None
    html = str(html_part.get_content())
    links: set[str] = {
        link for link in _FRONTEND_LINK.findall(mail.text) if urlsplit(link).path == path
    }
    assert len(links) == 1, f"links to {path} in the message: {links}"
    [link] = links
    assert html.count(f'href="{link}"') == 1
    [token] = parse_qs(urlsplit(link).query, strict_parsing=True)["token"]
    return token
