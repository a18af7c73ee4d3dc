from dataclasses import dataclass

from app.core.events import Event


@dataclass(frozen=True, slots=True)
class MailQueued(Event):
    """A message was written to the outbox; told once its unit of work has committed."""

    outbox_id: int
