"""Management commands: `python -m app.cli create-superuser --username ann --email ann@example.com`.

The password is read from the terminal, or from standard input with --password-stdin.
`list-failed-mail` shows the messages that could not be sent; `retry-failed-mail ID` (or --all)
gives them to the dispatchers again.
"""

import argparse
import asyncio
import getpass
import sys

from pydantic import ValidationError

from app.auth.service import AccountMail
from app.constraint_errors import CONSTRAINT_ERRORS
from app.core.config import Settings, get_settings
from app.core.db import Database
from app.core.db_errors import DATABASE_ERRORS, is_unavailable
from app.core.errors import AppError
from app.core.logging import configure_logging
from app.core.migrations import DatabaseNotMigrated, ensure_at_head, upgrade_to_head
from app.core.passwords import PasswordPolicy
from app.core.security import PasswordHasher
from app.mail import service as mail_service
from app.users import service as users_service
from app.users.schemas import UserCreate


async def create_superuser(settings: Settings, username: str, email: str, password: str) -> int:
    if settings.auto_migrate:
        await asyncio.to_thread(upgrade_to_head, settings.database_url)
    database = Database(settings, CONSTRAINT_ERRORS)
    try:
        await ensure_at_head(database.engine)
        data = UserCreate(username=username, email=email, password=password)
        mail = AccountMail.from_settings(settings, mail_service.MailComposer(settings))
        async with database.transaction() as session:
            user = await users_service.register(
                session,
                PasswordHasher(settings),
                PasswordPolicy(settings),
                mail,
                username=data.username,
                email=data.email,
                password=data.password,
                is_superuser=True,
            )
        return user.id
    finally:
        await database.dispose()


async def list_failed_mail(settings: Settings) -> list[str]:
    """One line per failed message: id, when queued, attempts, last error, template, recipient."""
    database = Database(settings)
    try:
        await ensure_at_head(database.engine)
        async with database.transaction(read_only=True) as session:
            failed = await mail_service.list_failed(session)
        return [
            f"{message.id}\t{message.created_at:%Y-%m-%d %H:%M:%S}Z\t{message.attempts}\t"
            f"{message.last_error or '-'}\t{message.template}\t{message.recipient}"
            for message in failed
        ]
    finally:
        await database.dispose()


async def retry_failed_mail(settings: Settings, outbox_id: int | None) -> list[int]:
    database = Database(settings)
    try:
        await ensure_at_head(database.engine)
        async with database.transaction() as session:
            return await mail_service.retry_failed(session, outbox_id)
    finally:
        await database.dispose()


def _read_password(from_stdin: bool) -> str:
    if from_stdin:
        return sys.stdin.readline().rstrip("\n")
    password = getpass.getpass("Password: ")
    if password != getpass.getpass("Password (again): "):
        raise SystemExit("The passwords do not match.")
    return password


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m app.cli", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    create = commands.add_parser("create-superuser", help="create an administrator account")
    create.add_argument("--username", required=True)
    create.add_argument("--email", required=True)
    create.add_argument(
        "--password-stdin", action="store_true", help="read the password from standard input"
    )
    commands.add_parser("list-failed-mail", help="list the mail that could not be sent")
    retry = commands.add_parser("retry-failed-mail", help="send failed mail again")
    which = retry.add_mutually_exclusive_group(required=True)
    which.add_argument("outbox_id", nargs="?", type=int, help="the id list-failed-mail shows")
    which.add_argument("--all", action="store_true", help="every failed message")
    args = parser.parse_args(argv)

    settings = get_settings()
    configure_logging(settings)  # logs go to stderr; stdout carries only the result
    if args.command != "create-superuser":
        return _mail_command(settings, args)
    password = _read_password(args.password_stdin)
    try:
        user_id = asyncio.run(create_superuser(settings, args.username, args.email, password))
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        print(f"Not created: {problems}", file=sys.stderr)
        return 2
    except (AppError, DatabaseNotMigrated) as exc:
        print(f"Not created: {exc}", file=sys.stderr)
        return 1
    except DATABASE_ERRORS as exc:
        if not is_unavailable(exc):
            raise
        print(f"Not created: the database is unavailable ({exc}).", file=sys.stderr)
        return 1
    print(f"Created superuser {args.username!r} (id {user_id}).")
    return 0


def _mail_command(settings: Settings, args: argparse.Namespace) -> int:
    try:
        if args.command == "list-failed-mail":
            for line in asyncio.run(list_failed_mail(settings)):
                print(line)
            return 0
        retried = asyncio.run(retry_failed_mail(settings, None if args.all else args.outbox_id))
    except DatabaseNotMigrated as exc:
        print(f"Not done: {exc}", file=sys.stderr)
        return 1
    except DATABASE_ERRORS as exc:
        if not is_unavailable(exc):
            raise
        print(f"Not done: the database is unavailable ({exc}).", file=sys.stderr)
        return 1
    if not retried:
        print("No such failed message.", file=sys.stderr)
        return 1
    print(f"Queued again: {', '.join(map(str, retried))}.")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
