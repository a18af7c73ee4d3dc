from dataclasses import dataclass

from app.core.events import Event


@dataclass(frozen=True, slots=True)
class UserChanged(Event):
    """A profile changed (name, bio, image) or the account was (de)activated or (de)promoted.

    `usernames` is every username key (lowercased) it had or has: a rename names both.
    """

    user_id: int
    usernames: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class UserDeleted(Event):
    """An account was deleted, and with it, by the database's cascade, these posts (and its
    comments, follows and favorites)."""

    user_id: int
    post_ids: tuple[int, ...]
    post_slugs: tuple[str, ...]
    username: str
