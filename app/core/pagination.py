"""Offset pagination, bounded: every list has a default and a maximum page size.

Repositories build a page with `paginate()`; services return it (`Page[Post]`); each surface
renders it its own way (`PageRead[PostRead]` on /api/v1).
"""

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Annotated, Generic, TypeVar

from fastapi import Depends, Query
from pydantic import BaseModel
from sqlalchemy import Select, func
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.ids import CanonicalDecimal

DEFAULT_PAGE_SIZE = 20
MAX_PAGE_SIZE = 100
# Past this an offset is a mistake (and would overflow PostgreSQL's integers).
MAX_OFFSET = 2**31 - 1

ItemT = TypeVar("ItemT")
OtherT = TypeVar("OtherT")


@dataclass(frozen=True, slots=True)
class PageRequest:
    limit: int
    offset: int


async def page_request(
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE_SIZE), CanonicalDecimal] = DEFAULT_PAGE_SIZE,
    offset: Annotated[int, Query(ge=0, le=MAX_OFFSET), CanonicalDecimal] = 0,
) -> PageRequest:
    return PageRequest(limit=limit, offset=offset)


PageDep = Annotated[PageRequest, Depends(page_request)]


@dataclass(frozen=True, slots=True)
class Page(Generic[ItemT]):
    """Some rows of a list, and how many the whole list has."""

    items: Sequence[ItemT]
    total: int
    limit: int
    offset: int

    def map(self, convert: Callable[[ItemT], OtherT]) -> "Page[OtherT]":
        """The same page with each item converted (rows to a service's views)."""
        return Page([convert(item) for item in self.items], self.total, self.limit, self.offset)


async def paginate(
    session: AsyncSession, statement: Select[ItemT], page: PageRequest
) -> Page[ItemT]:
    """The page of `statement` (ordered, one entity per row), and the count of all its rows."""
    items = list(await session.scalars(statement.limit(page.limit).offset(page.offset)))
    counting = statement.with_only_columns(func.count(), maintain_column_froms=True)
    total = await session.scalar(counting.order_by(None))
    return Page(items=items, total=total or 0, limit=page.limit, offset=page.offset)


class PageRead(BaseModel, Generic[ItemT]):
    """A page as /api/v1 sends it."""

    items: list[ItemT]
    total: int
    limit: int
    offset: int
