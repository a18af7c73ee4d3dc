import asyncio
import fcntl
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from fastapi import FastAPI
from sqlalchemy import MetaData, inspect, pool, text
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.ext.asyncio import AsyncSession, create_async_engine

from app.core.config import Settings
from app.core.db import Database
from app.core.migrations import DatabaseNotMigrated, alembic_config, upgrade_to_head
from app.main import create_app
from app.models import Base, User
from app.models.base import UTCDateTime
from tests.conftest import Serve
from tests.factories import make_post, make_user
from tests.helpers import open_session

T = TypeVar("T")
# The advisory lock migrations/env.py takes on PostgreSQL.
MIGRATION_LOCK_ID = 0x5155494C4C
QUILL_TABLES = {
    "users",
    "posts",
    "logins",
    "refresh_tokens",
    "outbox_messages",
    "account_tokens",
    "tags",
    "post_tags",
    "comments",
    "follows",
    "favorites",
    "idempotency_keys",
}
# What revision 0006 adds.
PUBLISHING_TABLES = {"tags", "post_tags", "comments", "follows", "favorites"}
# What revision 0007 adds.
IDEMPOTENCY_TABLES = {"idempotency_keys"}
NEW_USER = {"username": "ann", "email": "ann@example.com", "password": "correct horse battery"}


async def run_on(database_url: str, work: Callable[[Connection], T], *, commit: bool = False) -> T:
    """`work` on a connection of its own to the database (committed if `commit`)."""
    engine = create_async_engine(database_url, poolclass=pool.NullPool)
    try:
        async with engine.connect() as connection:
            result = await connection.run_sync(work)
            if commit:
                await connection.commit()
            return result
    finally:
        await engine.dispose()


async def schema_differences(database_url: str, metadata: MetaData) -> list[Any]:
    """What `alembic revision --autogenerate` would write to turn the database into `metadata`."""

    def compare(connection: Connection) -> list[Any]:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        return list(compare_metadata(context, metadata))

    return await run_on(database_url, compare)


async def table_names(database_url: str) -> set[str]:
    def names(connection: Connection) -> set[str]:
        return set(inspect(connection).get_table_names())

    return await run_on(database_url, names)


async def downgrade_to(database_url: str, revision: str) -> None:
    # env.py runs its own event loop (asyncio.run), so Alembic runs in a thread.
    await asyncio.to_thread(command.downgrade, alembic_config(database_url), revision)


async def downgrade_to_base(database_url: str) -> None:
    await downgrade_to(database_url, "base")


@contextmanager
def _file_lock(path: Path) -> Iterator[None]:
    with path.open("w") as lock_file:
        fcntl.flock(lock_file, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock_file, fcntl.LOCK_UN)


@asynccontextmanager
async def migration_lock_held(database_url: str) -> AsyncIterator[None]:
    """Hold the lock another worker's migration would hold (see app.core.migrations, env.py)."""
    url = make_url(database_url)
    if url.get_backend_name() == "sqlite":
        with _file_lock(Path(f"{url.database}.migrate.lock")):
            yield
        return
    engine = create_async_engine(database_url, poolclass=pool.NullPool)
    try:
        async with engine.connect() as connection:
            await connection.execute(
                text("SELECT pg_advisory_lock(:id)"), {"id": MIGRATION_LOCK_ID}
            )
            yield
    finally:
        await engine.dispose()


async def start(app: FastAPI) -> None:
    async with app.router.lifespan_context(app):
        pass


def test_the_models_define_every_quill_table() -> None:
    assert set(Base.metadata.tables) == QUILL_TABLES


async def test_migrations_and_models_agree(database_url: str) -> None:
    assert await schema_differences(database_url, Base.metadata) == []
    # The comparison does look at the migrated database: against no models, every table is extra.
    extra = await schema_differences(database_url, MetaData())
    assert {diff[1].name for diff in extra if diff[0] == "remove_table"} == QUILL_TABLES


async def test_downgrade_to_base_removes_every_table_and_upgrade_restores_them(
    database_url: str,
) -> None:
    await downgrade_to_base(database_url)
    assert await table_names(database_url) - {"alembic_version"} == set()

    await asyncio.to_thread(upgrade_to_head, database_url)
    assert await table_names(database_url) - {"alembic_version"} == QUILL_TABLES
    assert await schema_differences(database_url, Base.metadata) == []


async def test_a_migration_waits_while_another_worker_holds_the_migration_lock(
    database_url: str,
) -> None:
    # Workers starting together with AUTO_MIGRATE each migrate, one after the other.
    await downgrade_to_base(database_url)

    async with migration_lock_held(database_url):
        migrating = asyncio.create_task(asyncio.to_thread(upgrade_to_head, database_url))
        await asyncio.sleep(0.5)
        waited = not migrating.done()
    await migrating

    assert waited
    assert await schema_differences(database_url, Base.metadata) == []


async def test_startup_refuses_a_database_behind_the_latest_migration(
    settings: Settings, database_url: str
) -> None:
    await downgrade_to_base(database_url)
    app = create_app(settings.model_copy(update={"AUTO_MIGRATE": False}))

    with pytest.raises(DatabaseNotMigrated, match="alembic upgrade head"):
        await start(app)
    assert await table_names(database_url) - {"alembic_version"} == set()


async def test_startup_with_auto_migrate_brings_the_database_to_head(
    settings: Settings, database_url: str, serve: Serve
) -> None:
    await downgrade_to_base(database_url)
    app = create_app(settings.model_copy(update={"AUTO_MIGRATE": True}))

    async with serve(app) as client:
        response = await client.post("/api/v1/users/", json=NEW_USER)

    assert response.status_code == 201, response.text
    assert await schema_differences(database_url, Base.metadata) == []


async def test_first_start_on_the_embedded_sqlite_default_creates_and_migrates_it(
    tmp_path: Path, serve: Serve
) -> None:
    data_dir = tmp_path / "fresh" / "data"
    settings = Settings(
        _env_file=None,
        ENVIRONMENT="test",
        DATABASE_URL="",
        DATA_DIR=data_dir,
        SECRET_KEY="test-secret-key-that-is-long-enough-for-hs256",
    )
    app = create_app(settings)

    async with serve(app) as client:
        response = await client.post("/api/v1/users/", json=NEW_USER)

    assert response.status_code == 201, response.text
    assert (data_dir / "quill.db").is_file()
    assert await schema_differences(settings.database_url, Base.metadata) == []


def test_every_table_with_an_integer_id_never_reuses_ids_on_sqlite() -> None:
    # SQLite hands a deleted row's id to the next insert unless the table says AUTOINCREMENT.
    autoincrementing = [
        table for table in Base.metadata.tables.values() if table.autoincrement_column is not None
    ]
    assert {"users", "posts"} <= {table.name for table in autoincrementing}
    undeclared = [
        table.name
        for table in autoincrementing
        if not table.dialect_options["sqlite"]["autoincrement"]
    ]
    assert undeclared == []


async def test_ids_of_deleted_posts_and_users_are_never_reused(session: AsyncSession) -> None:
    ann = await make_user(session, username="ann")
    await make_post(session, ann)
    newest_post = await make_post(session, ann)
    newest_user = await make_user(session, username="bob")
    used_post_id, used_user_id = newest_post.id, newest_user.id
    await session.delete(newest_post)
    await session.delete(newest_user)
    await session.commit()

    carol = await make_user(session, username="carol")
    post = await make_post(session, carol)

    assert carol.id > used_user_id
    assert post.id > used_post_id


# Rows as revision 0001 stores them, for every table it creates.
_AT = datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=UTC)
ROWS_AT_0001: dict[str, list[dict[str, Any]]] = {
    "users": [
        {
            "id": number,
            "username": name,
            "username_key": name,
            "email": f"{name}@example.com",
            "hashed_password": "not-a-real-hash",
            "bio": None,
            "image": None,
            "is_active": True,
            "is_superuser": False,
            "email_verified": False,
            "created_at": _AT,
            "updated_at": _AT,
        }
        for number, name in [(1, "ann"), (2, "bob"), (3, "carol")]
    ],
    "posts": [
        {
            "id": number,
            "title": f"Post {number}",
            "content": "Hello.",
            "author_id": author_id,
            "created_at": _AT,
            "updated_at": _AT,
        }
        for number, author_id in [(1, 1), (2, 2), (3, 1), (4, 3)]
    ],
    "logins": [
        {
            "id": f"{number:032x}",
            "user_id": number,
            "created_at": _AT,
            "ended_at": None,
            "end_reason": None,
        }
        for number in (1, 2, 3)
    ],
    "refresh_tokens": [
        {
            "id": f"{number + 100:032x}",
            "login_id": f"{number:032x}",
            "created_at": _AT,
            "expires_at": _AT + timedelta(days=30),
            "spent_at": None,
        }
        for number in (1, 2, 3)
    ],
}
_CATCH_UP_SEQUENCES = [
    "SELECT setval(pg_get_serial_sequence('users', 'id'), (SELECT max(id) FROM users))",
    "SELECT setval(pg_get_serial_sequence('posts', 'id'), (SELECT max(id) FROM posts))",
]
_DATETIME_COLUMNS = {"created_at", "updated_at", "ended_at", "expires_at", "spent_at"}


def _table_at_0001(name: str) -> sa.TableClause:
    columns = [
        sa.column(column, UTCDateTime()) if column in _DATETIME_COLUMNS else sa.column(column)
        for column in ROWS_AT_0001[name][0]
    ]
    return sa.table(name, *columns)


async def rows_at_0001(database_url: str) -> dict[str, list[tuple[Any, ...]]]:
    """Every table's rows, in the columns revision 0001 created, ordered by id."""

    def read(connection: Connection) -> dict[str, list[tuple[Any, ...]]]:
        rows = {}
        for name in ROWS_AT_0001:
            table = _table_at_0001(name)
            statement = sa.select(*table.columns).order_by(table.c.id)
            rows[name] = [tuple(row) for row in connection.execute(statement)]
        return rows

    return await run_on(database_url, read)


async def insert_rows_at_0001(database_url: str) -> None:
    def insert(connection: Connection) -> None:
        for name, rows in ROWS_AT_0001.items():
            connection.execute(sa.insert(_table_at_0001(name)), rows)
        if connection.dialect.name == "postgresql":
            # Explicit ids leave the sequences behind (the application never inserts one).
            for statement in _CATCH_UP_SEQUENCES:
                connection.execute(text(statement))

    await run_on(database_url, insert, commit=True)


async def test_upgrade_from_0001_keeps_every_row_and_never_reuses_their_ids(
    settings: Settings, database_url: str
) -> None:
    await downgrade_to(database_url, "0001")
    await insert_rows_at_0001(database_url)
    before = await rows_at_0001(database_url)
    assert {name: len(rows) for name, rows in before.items()} == {
        name: len(rows) for name, rows in ROWS_AT_0001.items()
    }

    await asyncio.to_thread(upgrade_to_head, database_url)

    assert await rows_at_0001(database_url) == before
    assert await schema_differences(database_url, Base.metadata) == []
    database = Database(settings)
    try:
        async with open_session(database) as session:
            # Carol has the highest user id and wrote the highest post: both go.
            await session.delete(await session.get_one(User, 3))
            await session.commit()
            dan = await make_user(session, username="dan")
            post = await make_post(session, dan)
    finally:
        await database.dispose()

    assert dan.id > 3
    assert post.id > 4


async def test_upgrade_gives_existing_logins_90_days_from_their_sign_in(database_url: str) -> None:
    await downgrade_to(database_url, "0001")
    await insert_rows_at_0001(database_url)

    await asyncio.to_thread(upgrade_to_head, database_url)

    logins = sa.table(
        "logins", sa.column("created_at", UTCDateTime()), sa.column("expires_at", UTCDateTime())
    )
    statement = sa.select(logins.c.created_at, logins.c.expires_at)
    rows = await run_on(database_url, lambda connection: connection.execute(statement).all())
    assert len(rows) == len(ROWS_AT_0001["logins"])
    assert all(expires_at == created_at + timedelta(days=90) for created_at, expires_at in rows)


async def test_downgrade_to_0003_removes_only_the_outbox_and_upgrade_restores_it(
    database_url: str,
) -> None:
    await downgrade_to(database_url, "0003")
    assert await table_names(database_url) - {"alembic_version"} == QUILL_TABLES - {
        "outbox_messages",
        "account_tokens",
        *PUBLISHING_TABLES,
        *IDEMPOTENCY_TABLES,
    }

    await asyncio.to_thread(upgrade_to_head, database_url)
    assert await table_names(database_url) - {"alembic_version"} == QUILL_TABLES
    assert await schema_differences(database_url, Base.metadata) == []


async def test_the_outbox_refuses_a_status_it_does_not_know(database_url: str) -> None:
    # Alembic's comparison does not look at check constraints: this one is checked here.
    outbox = sa.table(
        "outbox_messages",
        *(
            sa.column(name, UTCDateTime()) if name.endswith("_at") else sa.column(name)
            for name in _OUTBOX_ROW
        ),
    )

    def insert(connection: Connection) -> None:
        connection.execute(sa.insert(outbox), [{**_OUTBOX_ROW, "status": "lost"}])

    with pytest.raises(sa.exc.IntegrityError, match="status_is_known"):
        await run_on(database_url, insert, commit=True)


_OUTBOX_ROW: dict[str, Any] = {
    "message_id": "<1@example.com>",
    "template": "test",
    "recipient": "ann@example.com",
    "subject": "Hello",
    "text_body": "Hello.",
    "html_body": "<p>Hello.</p>",
    "status": "pending",
    "attempts": 0,
    "next_attempt_at": _AT,
    "created_at": _AT,
}


async def test_downgrade_to_0004_removes_only_the_account_tokens_and_upgrade_restores_them(
    database_url: str,
) -> None:
    await downgrade_to(database_url, "0004")
    assert await table_names(database_url) - {"alembic_version"} == QUILL_TABLES - {
        "account_tokens",
        *PUBLISHING_TABLES,
        *IDEMPOTENCY_TABLES,
    }

    await asyncio.to_thread(upgrade_to_head, database_url)
    assert await table_names(database_url) - {"alembic_version"} == QUILL_TABLES
    assert await schema_differences(database_url, Base.metadata) == []


_ACCOUNT_TOKEN_COLUMNS = ("user_id", "purpose", "token_hash", "email", "expires_at", "created_at")
_ACCOUNT_TOKENS = sa.table(
    "account_tokens",
    *(
        sa.column(name, UTCDateTime()) if name.endswith("_at") else sa.column(name)
        for name in _ACCOUNT_TOKEN_COLUMNS
    ),
)


def _account_token_row(user_id: int, **changes: Any) -> dict[str, Any]:
    return {
        "user_id": user_id,
        "purpose": "verify_email",
        "token_hash": "0" * 64,
        "email": "ann@example.com",
        "expires_at": _AT,
        "created_at": _AT,
        **changes,
    }


async def test_account_tokens_refuse_a_purpose_they_do_not_know(
    database_url: str, session: AsyncSession
) -> None:
    # Alembic's comparison does not look at check constraints: this one is checked here.
    ann = await make_user(session, username="ann")

    def insert(connection: Connection) -> None:
        row = _account_token_row(ann.id, purpose="login")
        connection.execute(sa.insert(_ACCOUNT_TOKENS), [row])

    with pytest.raises(sa.exc.IntegrityError, match="purpose_is_known"):
        await run_on(database_url, insert, commit=True)


async def test_account_tokens_go_with_their_user_and_no_two_share_a_hash(
    database_url: str, session: AsyncSession
) -> None:
    ann = await make_user(session, username="ann")
    bob = await make_user(session, username="bob")
    await run_on(
        database_url,
        lambda connection: connection.execute(
            sa.insert(_ACCOUNT_TOKENS),
            [_account_token_row(ann.id), _account_token_row(bob.id, token_hash="1" * 64)],
        ),
        commit=True,
    )

    def insert_a_second_hash(connection: Connection) -> None:
        connection.execute(sa.insert(_ACCOUNT_TOKENS), [_account_token_row(bob.id)])

    with pytest.raises(sa.exc.IntegrityError, match="token_hash"):
        await run_on(database_url, insert_a_second_hash, commit=True)
    await session.delete(ann)
    await session.commit()

    def remaining(connection: Connection) -> list[Any]:
        statement = sa.select(_ACCOUNT_TOKENS.c.user_id)
        return list(connection.execute(statement).scalars())

    assert await run_on(database_url, remaining) == [bob.id]


async def test_upgrade_to_0006_gives_existing_posts_distinct_slugs_from_their_titles(
    database_url: str,
) -> None:
    await downgrade_to(database_url, "0001")
    await insert_rows_at_0001(database_url)
    titles = {1: "Planting garlic", 2: "Planting garlic", 3: "Café au lait", 4: "日本"}
    posts_before = sa.table("posts", sa.column("id"), sa.column("title"))

    def retitle(connection: Connection) -> None:
        for post_id, title in titles.items():
            connection.execute(
                sa.update(posts_before).where(posts_before.c.id == post_id).values(title=title)
            )

    await run_on(database_url, retitle, commit=True)

    await asyncio.to_thread(upgrade_to_head, database_url)

    posts = sa.table("posts", sa.column("id"), sa.column("slug"), sa.column("description"))
    statement = sa.select(posts.c.id, posts.c.slug, posts.c.description).order_by(posts.c.id)
    rows = await run_on(database_url, lambda connection: connection.execute(statement).all())
    assert [tuple(row) for row in rows] == [
        (1, "planting-garlic-1", ""),
        (2, "planting-garlic-2", ""),
        (3, "cafe-au-lait-3", ""),
        (4, "post-4", ""),
    ]
    assert await schema_differences(database_url, Base.metadata) == []


async def test_downgrade_to_0005_removes_only_the_publishing_domain_and_upgrade_restores_it(
    database_url: str,
) -> None:
    await downgrade_to(database_url, "0005")
    assert await table_names(database_url) - {"alembic_version"} == (
        QUILL_TABLES - PUBLISHING_TABLES - IDEMPOTENCY_TABLES
    )

    def post_columns(connection: Connection) -> set[str]:
        return {column["name"] for column in inspect(connection).get_columns("posts")}

    assert {"slug", "description"}.isdisjoint(await run_on(database_url, post_columns))

    await asyncio.to_thread(upgrade_to_head, database_url)
    assert await table_names(database_url) - {"alembic_version"} == QUILL_TABLES
    assert await schema_differences(database_url, Base.metadata) == []


async def test_downgrade_to_0006_removes_only_the_idempotency_keys_and_upgrade_restores_them(
    database_url: str,
) -> None:
    await downgrade_to(database_url, "0006")
    assert await table_names(database_url) - {"alembic_version"} == (
        QUILL_TABLES - IDEMPOTENCY_TABLES
    )

    await asyncio.to_thread(upgrade_to_head, database_url)
    assert await table_names(database_url) - {"alembic_version"} == QUILL_TABLES
    assert await schema_differences(database_url, Base.metadata) == []


async def test_a_user_cannot_follow_themselves_even_behind_the_services_back(
    database_url: str, session: AsyncSession
) -> None:
    # Alembic's comparison does not look at check constraints: this one is checked here.
    ann = await make_user(session, username="ann")
    follows = sa.table(
        "follows",
        sa.column("follower_id"),
        sa.column("followee_id"),
        sa.column("created_at", UTCDateTime()),
    )

    def insert(connection: Connection) -> None:
        row = {"follower_id": ann.id, "followee_id": ann.id, "created_at": _AT}
        connection.execute(sa.insert(follows), [row])

    with pytest.raises(sa.exc.IntegrityError, match="not_oneself"):
        await run_on(database_url, insert, commit=True)


async def test_upgrade_to_0009_counts_each_users_existing_posts(database_url: str) -> None:
    await downgrade_to(database_url, "0001")
    await insert_rows_at_0001(database_url)
    written = Counter(post["author_id"] for post in ROWS_AT_0001["posts"])

    await asyncio.to_thread(upgrade_to_head, database_url)

    users = sa.table("users", sa.column("id"), sa.column("post_count"))
    statement = sa.select(users.c.id, users.c.post_count)
    rows = await run_on(database_url, lambda connection: connection.execute(statement).all())
    assert dict(tuple(row) for row in rows) == {
        user["id"]: written[user["id"]] for user in ROWS_AT_0001["users"]
    }
    assert await schema_differences(database_url, Base.metadata) == []
