from dataclasses import dataclass

from app.core.events import Event


@dataclass(frozen=True, slots=True)
class PostChanged(Event):
    """A post was written, edited, deleted, favorited or commented: what shows it is out of date.

    `slugs` is every slug it had or has: an edit that changed the slug names both.
    """

    post_id: int
    slugs: tuple[str, ...]
