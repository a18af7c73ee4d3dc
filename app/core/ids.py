"""Numbers in URLs: row ids, and the paging numbers that app/core/pagination.py bounds.

Each is written one way only, in plain decimal digits: /posts/10, never /posts/1_0, /posts/+10 or
/posts/010. One URL per resource keeps links, cache keys and ETags from multiplying.
"""

import re
from typing import Annotated, Any

from fastapi import Path, Query
from pydantic import BeforeValidator
from pydantic_core import PydanticCustomError

# Row ids are 32-bit on PostgreSQL: a larger one can name nothing, and is rejected as input.
MAX_ROW_ID = 2**31 - 1

# ASCII digits only (\d would take any script's digits), and no leading zero.
_CANONICAL_DECIMAL = re.compile(r"0|[1-9][0-9]*")


def _require_canonical_decimal(value: Any) -> Any:
    # Path and query values arrive as text; pydantic's int parsing alone would accept a sign,
    # surrounding whitespace, underscores between digits and a zero fraction ("1.0").
    if isinstance(value, str) and not _CANONICAL_DECIMAL.fullmatch(value):
        raise PydanticCustomError(
            "int_parsing",
            "Input should be an integer in plain decimal digits, with no sign, space, "
            "underscore, decimal point or leading zero",
        )
    return value


# Goes after the Path(...) or Query(...) that bounds the number: placed before, it would wrap the
# integer, and ge/le would no longer reach OpenAPI as the minimum and maximum.
CanonicalDecimal = BeforeValidator(_require_canonical_decimal)

UserIdPath = Annotated[
    int, Path(ge=1, le=MAX_ROW_ID, description="The user's id."), CanonicalDecimal
]
PostIdPath = Annotated[
    int, Path(ge=1, le=MAX_ROW_ID, description="The post's id."), CanonicalDecimal
]
AuthorIdQuery = Annotated[
    int | None, Query(ge=1, le=MAX_ROW_ID, description="Only this user's posts."), CanonicalDecimal
]
CommentIdPath = Annotated[
    int, Path(ge=1, le=MAX_ROW_ID, description="The comment's id."), CanonicalDecimal
]
