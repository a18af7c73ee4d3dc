"""What a database error means: try again, a known constraint, or a bug; and what of it may be
logged. The same on PostgreSQL and SQLite."""

import re
import sqlite3
from typing import Any

from sqlalchemy import MetaData, UniqueConstraint
from sqlalchemy import exc as sa_exc

from app.core.errors import AppError

# Errors that mean "the database cannot serve now", not "this request is wrong".
DATABASE_UNAVAILABLE_ERRORS: tuple[type[Exception], ...] = (
    sa_exc.OperationalError,
    sa_exc.InterfaceError,
    sa_exc.TimeoutError,
    ConnectionError,
    TimeoutError,
)


class ConstraintErrors:
    """Which domain error each unique constraint stands for, by constraint name.

    The same clash then gives the same answer whether a service's check caught it or, in a race,
    the constraint did. Any other integrity error (NOT NULL, CHECK, a foreign key) is a bug.
    """

    def __init__(self, metadata: MetaData, errors: dict[str, type[AppError]]) -> None:
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
    """The name of the constraint an integrity error broke, on PostgreSQL and SQLite alike."""
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
        if isinstance(constraint, UniqueConstraint) and set(constraint.columns.keys()) == columns:
            return str(constraint.name)
    return None


def is_unavailable(error: Exception) -> bool:
    """Whether an error of DATABASE_UNAVAILABLE_ERRORS means "try again", not a bug.

    A write to a SQLite read-only transaction is an OperationalError too, but it is a bug.
    """
    driver = _driver_error(error)
    return getattr(driver, "sqlite_errorname", None) != "SQLITE_READONLY"


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
