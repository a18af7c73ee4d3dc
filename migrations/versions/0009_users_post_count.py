"""users.post_count: how many posts each user has written

Kept by the transactions that create and delete posts, so that a list's total is a sum over
its authors instead of a count over every post. Filled here from the posts that exist.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-02
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("users") as batch:
        batch.add_column(sa.Column("post_count", sa.Integer(), server_default="0", nullable=False))
    op.execute(
        "UPDATE users SET post_count ="
        " (SELECT count(*) FROM posts WHERE posts.author_id = users.id)"
    )


def downgrade() -> None:
    with op.batch_alter_table("users") as batch:
        batch.drop_column("post_count")
