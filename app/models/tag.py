from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from app.models.base import Base

TAG_MAX_LENGTH = 64
# The most tags one post may carry.
TAGS_PER_POST_MAX = 20
# No control characters: the read model joins a post's tags with two of them (app/posts/
# repository.py), and no tag may contain either. Tags are stored stripped; the schemas strip too.
TAG_PATTERN = r"^[^\x00-\x1f\x7f]*$"


class Tag(Base):
    """A tag's name, once: posts carry it through post_tags."""

    __tablename__ = "tags"
    # Ids are never reused, on SQLite too (see User).
    __table_args__ = ({"sqlite_autoincrement": True},)

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(TAG_MAX_LENGTH), unique=True)
