"""An outbox row as the MIME message that goes out: the same headers on every attempt."""

from email.message import EmailMessage
from email.utils import format_datetime

from app.models import OutboxMessage


def to_email_message(message: OutboxMessage, *, sender: str) -> EmailMessage:
    email = EmailMessage()
    email["Message-ID"] = message.message_id
    # When it was queued: a retry is the same message, not a newer one.
    email["Date"] = format_datetime(message.created_at)
    email["From"] = sender
    email["To"] = message.recipient
    email["Subject"] = message.subject
    # RFC 3834: no out-of-office reply should answer it.
    email["Auto-Submitted"] = "auto-generated"
    email.set_content(message.text_body)
    email.add_alternative(message.html_body, subtype="html")
    return email
