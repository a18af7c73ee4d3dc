"""idempotency keys remember the row their request created

A kept answer names what its request created (created_kind) and links to that post or comment;
deleting the row empties the link (ON DELETE SET NULL), so a retry learns that it is gone.
Answers kept before this migration name nothing and replay as before.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-02
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_CREATED = (("created_post_id", "posts"), ("created_comment_id", "comments"))


def upgrade() -> None:
    with op.batch_alter_table("idempotency_keys") as batch:
        batch.add_column(sa.Column("created_kind", sa.String(length=16), nullable=True))
        for column, table in _CREATED:
            batch.add_column(sa.Column(column, sa.Integer(), nullable=True))
            batch.create_foreign_key(
                op.f(f"fk_idempotency_keys_{column}_{table}"),
                table,
                [column],
                ["id"],
                ondelete="SET NULL",
            )
            # Deleting a post or comment looks up the answers that link to it.
            batch.create_index(op.f(f"ix_idempotency_keys_{column}"), [column], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("idempotency_keys") as batch:
        for column, table in reversed(_CREATED):
            batch.drop_index(op.f(f"ix_idempotency_keys_{column}"))
            batch.drop_constraint(op.f(f"fk_idempotency_keys_{column}_{table}"), type_="foreignkey")
            batch.drop_column(column)
        batch.drop_column("created_kind")
