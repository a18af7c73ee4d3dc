from dataclasses import dataclass

from app.core.events import Event


@dataclass(frozen=True, slots=True)
class UserChanged(Event):
    """A profile changed (name, bio, image) or the account was (de)activated or (de)promoted."""

    user_id: int


@dataclass(frozen=True, slots=True)
class UserDeleted(Event):
    """An account was deleted, and with it, by the database's cascade, these posts."""

    user_id: int
    post_ids: tuple[int, ...]
