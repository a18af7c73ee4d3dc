from dataclasses import dataclass

from app.core.events import Event


@dataclass(frozen=True, slots=True)
class PostChanged(Event):
    """A post was written, edited or deleted: what shows it is out of date."""

    post_id: int
