"""What a database error means: try again, a known constraint, or a bug; and what of it may be
logged. The same on PostgreSQL and SQLite."""

import re
import sqlite3
from typing import Any

from sqlalchemy import MetaData, PrimaryKeyConstraint, UniqueConstraint
from sqlalchemy import exc as sa_exc

from app.core.errors import AppError


class DatabaseUnreachable(ConnectionError):
    """No new connection to the database could be opened: it is down, unreachable or refusing."""


# Every error the database layer raises: each is either "try again" (is_unavailable) or a bug.
DATABASE_ERRORS: tuple[type[Exception], ...] = (
    sa_exc.DBAPIError,
    sa_exc.TimeoutError,  # no pooled connection came free in time
    DatabaseUnreachable,
)

# "Try again", by the code the database gives: SQLite's error names, PostgreSQL's SQLSTATEs
# (classes 08 connection, 53 resources, 57P shutdown; a deadlock or serialization victim; a
# lock not available). Anything else, such as "no such column", is a bug.
_TRANSIENT_SQLITE_ERRORS = (
    "SQLITE_BUSY",
    "SQLITE_LOCKED",
    "SQLITE_CANTOPEN",
    "SQLITE_IOERR",
    "SQLITE_FULL",
    "SQLITE_NOMEM",
    "SQLITE_PROTOCOL",
)
_TRANSIENT_SQLSTATE_CLASSES = ("08", "53", "57P")
_TRANSIENT_SQLSTATES = frozenset({"40001", "40P01", "55P03"})


class ConstraintErrors:
    """Which domain error each unique constraint stands for, by constraint name.

    The same clash then gives the same answer whether a service's check caught it or, in a race,
    the constraint did. Any other integrity error (NOT NULL, CHECK, a foreign key) is a bug.
    """

    def __init__(self, metadata: MetaData, errors: dict[str, type[AppError]]) -> None:
        known = {c.name for table in metadata.tables.values() for c in table.constraints}
        if unknown := set(errors) - known:
            # A renamed constraint would otherwise turn its races into 500s, silently.
            raise ValueError(f"no such constraints in the models: {sorted(unknown)}")
        self._metadata = metadata
        self._errors = errors

    def error_for(self, error: sa_exc.IntegrityError) -> AppError | None:
        name = violated_constraint(error, self._metadata)
        error_class = self._errors.get(name) if name else None
        return error_class() if error_class else None


def _driver_error(error: BaseException) -> BaseException:
    """The driver's own exception: asyncpg's sits behind SQLAlchemy's adapter."""
    original = getattr(error, "orig", None) or error
    return original.__cause__ or original


_SQLITE_UNIQUE = re.compile(r"UNIQUE constraint failed: (.+)")


def violated_constraint(error: sa_exc.IntegrityError, metadata: MetaData) -> str | None:
    """The name of the constraint an integrity error broke, on PostgreSQL and SQLite alike
    (SQLite reports a duplicate primary key as a unique constraint's failure)."""
    name = getattr(_driver_error(error), "constraint_name", None)
    if isinstance(name, str):
        return name
    # SQLite names the columns of a unique constraint, not the constraint.
    match = _SQLITE_UNIQUE.match(str(getattr(error, "orig", "")))
    if match is None:
        return None
    qualified = [column.strip().split(".") for column in match.group(1).split(",")]
    table = metadata.tables.get(qualified[0][0])
    columns = {column for _table, column in qualified}
    for constraint in table.constraints if table is not None else ():
        if not isinstance(constraint, (UniqueConstraint, PrimaryKeyConstraint)):
            continue
        if set(constraint.columns.keys()) == columns:
            return str(constraint.name)
    return None


def is_unavailable(error: Exception) -> bool:
    """Whether a database error means "the database cannot serve now: try again", not a bug."""
    if isinstance(error, (sa_exc.TimeoutError, DatabaseUnreachable)):
        return True
    if isinstance(error, sa_exc.DBAPIError) and error.connection_invalidated:
        # The driver found its connection closed: a restart or a terminated backend, whatever
        # the error says (asyncpg most often reports an internal state error, with no SQLSTATE).
        return True
    driver = _driver_error(error)
    if isinstance(driver, sqlite3.Error):
        return getattr(driver, "sqlite_errorname", "").startswith(_TRANSIENT_SQLITE_ERRORS)
    sqlstate = getattr(driver, "sqlstate", None)
    if isinstance(sqlstate, str):
        return sqlstate in _TRANSIENT_SQLSTATES or sqlstate.startswith(_TRANSIENT_SQLSTATE_CLASSES)
    # No code to go by: the connection itself failed (closed, reset) rather than a statement.
    return isinstance(error, (sa_exc.OperationalError, sa_exc.InterfaceError))


def describe_database_error(error: Exception) -> dict[str, Any]:
    """What may be logged of a database error: its kind and constraint, never its values.

    PostgreSQL's messages quote rows and values ("Failing row contains ..."); SQLite's name only
    tables, columns and conditions.
    """
    driver = _driver_error(error)
    description: dict[str, Any] = {"error_type": type(driver).__name__}
    for attribute in ("sqlstate", "constraint_name", "table_name", "column_name"):
        if value := getattr(driver, attribute, None):
            description[attribute] = value
    if isinstance(driver, sqlite3.Error) or not isinstance(error, sa_exc.DBAPIError):
        description["error"] = str(driver).splitlines()[0] if str(driver) else ""
    return description
