"""Offset pagination, bounded: every list has a default and a maximum page size."""

from dataclasses import dataclass
from typing import Annotated, Generic, TypeVar

from fastapi import Depends, Query
from pydantic import BaseModel

from app.core.ids import CanonicalDecimal

DEFAULT_PAGE_SIZE = 20
MAX_PAGE_SIZE = 100
# Past this an offset is a mistake (and would overflow PostgreSQL's integers).
MAX_OFFSET = 2**31 - 1


@dataclass(frozen=True, slots=True)
class PageRequest:
    limit: int
    offset: int


def page_request(
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE_SIZE), CanonicalDecimal] = DEFAULT_PAGE_SIZE,
    offset: Annotated[int, Query(ge=0, le=MAX_OFFSET), CanonicalDecimal] = 0,
) -> PageRequest:
    return PageRequest(limit=limit, offset=offset)


PageDep = Annotated[PageRequest, Depends(page_request)]


ItemT = TypeVar("ItemT")


class Page(BaseModel, Generic[ItemT]):
    items: list[ItemT]
    total: int
    limit: int
    offset: int
