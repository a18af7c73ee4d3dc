from typing import Annotated

from fastapi import Path

# Row ids are 32-bit on PostgreSQL: a larger one can name nothing, and is rejected as input.
MAX_ROW_ID = 2**31 - 1

UserIdPath = Annotated[int, Path(ge=1, le=MAX_ROW_ID, description="The user's id.")]
PostIdPath = Annotated[int, Path(ge=1, le=MAX_ROW_ID, description="The post's id.")]
