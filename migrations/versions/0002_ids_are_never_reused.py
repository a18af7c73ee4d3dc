"""ids of users and posts are never reused: SQLite AUTOINCREMENT

Without AUTOINCREMENT, SQLite gives a new row the highest id in use plus one, so deleting the
newest post hands its id to the next one. The keyword lives in CREATE TABLE, so on SQLite both
tables are rebuilt (env.py turns foreign keys off meanwhile, so rows referring to users stay, and
checks them afterwards). The copy sets each table's counter to its highest id: ids deleted before
this migration, above those still in use, can come back once. PostgreSQL's sequences never go
back, so there is nothing to do there.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-01
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLES = ("users", "posts")


def upgrade() -> None:
    if op.get_context().dialect.name != "sqlite":
        return
    for table in TABLES:
        # The table is reflected, so its columns, named constraints and indexes come back as
        # they are. The primary key now sits in the id column (where AUTOINCREMENT must be), and
        # SQLite names no such key: pk_users and pk_posts exist only on PostgreSQL.
        with op.batch_alter_table(
            table, recreate="always", table_kwargs={"sqlite_autoincrement": True}
        ):
            pass


def downgrade() -> None:
    if op.get_context().dialect.name != "sqlite":
        return
    for table in TABLES:
        with op.batch_alter_table(
            table, recreate="always", table_kwargs={"sqlite_autoincrement": False}
        ) as batch_op:
            batch_op.create_primary_key(f"pk_{table}", ["id"])
