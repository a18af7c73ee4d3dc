"""logins end at a max age: logins.expires_at

A login used to live as long as it was refreshed. Now it ends LOGIN_MAX_AGE_SECONDS after the
sign-in (90 days by default), and no token outlives it. Existing logins get the default: they
end 90 days after they began.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-01
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import app.models.base

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Existing logins get the default of LOGIN_MAX_AGE_SECONDS when this revision was written: 90 days.
BACKFILL = {
    "postgresql": "UPDATE logins SET expires_at = created_at + interval '90 days'",
    # SQLite keeps "YYYY-MM-DD HH:MM:SS.ffffff": shift the date and time, keep the microseconds.
    "sqlite": (
        "UPDATE logins SET expires_at = "
        "strftime('%Y-%m-%d %H:%M:%S', created_at, '+90 days') || substr(created_at, 20)"
    ),
}


def upgrade() -> None:
    with op.batch_alter_table("logins", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("expires_at", app.models.base.UTCDateTime(timezone=True), nullable=True)
        )
    op.execute(BACKFILL[op.get_context().dialect.name])
    with op.batch_alter_table("logins", schema=None) as batch_op:
        batch_op.alter_column(
            "expires_at", existing_type=app.models.base.UTCDateTime(timezone=True), nullable=False
        )


def downgrade() -> None:
    with op.batch_alter_table("logins", schema=None) as batch_op:
        batch_op.drop_column("expires_at")
