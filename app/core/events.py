"""Domain events: what a unit of work did, told to its listeners once it has committed.

Services publish (`publish(session, PostChanged(post_id=7))`) without knowing who listens; the
app subscribes at start-up through `Database.events`. Nothing listens yet: the response cache and
the mail dispatcher of the next issues will. Events of a unit of work that rolls back are never
delivered.
"""

from collections import defaultdict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from functools import partial
from typing import Any, TypeVar

from sqlalchemy.ext.asyncio import AsyncSession

from app.core.after_commit import on_commit


@dataclass(frozen=True, slots=True)
class Event:
    """Subclasses are frozen dataclasses that name what happened."""


EventT = TypeVar("EventT", bound=Event)
Listener = Callable[[Any], Awaitable[None] | None]
_BUS = "quill.events"


class EventBus:
    def __init__(self) -> None:
        self._listeners: defaultdict[type[Event], list[Listener]] = defaultdict(list)

    def subscribe(
        self, event_type: type[EventT], listener: Callable[[EventT], Awaitable[None] | None]
    ) -> None:
        self._listeners[event_type].append(listener)

    def attach(self, session: AsyncSession) -> None:
        """Deliver what is published on `session` to this bus's listeners."""
        session.info[_BUS] = self

    def listeners_of(self, event: Event) -> list[Listener]:
        return self._listeners.get(type(event), [])


def publish(session: AsyncSession, event: Event) -> None:
    """Tell the listeners of the session's bus about `event`, once its unit of work committed."""
    bus: EventBus | None = session.info.get(_BUS)
    for listener in bus.listeners_of(event) if bus is not None else []:
        # One callback per listener: one that fails does not silence the others.
        on_commit(session, partial(listener, event))
