"""Quill stops on SIGTERM under steady traffic: the requests it is answering finish, nothing it
acknowledged is lost, and the mail it had queued is sent by the next start.

So that mail is still queued when it stops, the first run's mail folder is unusable (a file
stands in its place), as an SMTP server that is down would be: the outbox keeps every message,
retrying. Once the folder is usable again, the second run must send them all.
"""

import email.parser
import email.policy
import signal
import time
from email.utils import parseaddr
from pathlib import Path

import pytest

from tests.factories import bearer
from tests.faults.quill import query_column, quill_settings, serving, stored_titles
from tests.faults.traffic import (
    HeldRequest,
    Traffic,
    acknowledged,
    create_post,
    new_account,
    new_client,
    new_post,
    of_kind,
    open_accounts,
    report,
    running,
)
from tests.helpers import parse, value
from tests.quill_process import QuillProcess

pytestmark = pytest.mark.faults

WRITERS = [f"writer{n}" for n in range(1, 5)]
WARM_UP_SECONDS = 3.0
# Between SIGTERM and the rest of the held bodies: long enough for every worker to have begun
# shutting down (the supervisor signals them within half a second).
SHUTTING_DOWN_SECONDS = 1.5
STOP_SECONDS = 30.0
MAIL_SECONDS = 30.0
PENDING_MAIL = "SELECT count(*) FROM outbox_messages WHERE status = 'pending'"


def requests_in_progress(quill: QuillProcess) -> float:
    """Across the workers; the scrape that asks is one of them."""
    with new_client(quill.url) as client:
        scrape = client.get("/metrics")
    assert scrape.status_code == 200
    return value(parse(scrape.text), "http_requests_in_progress")


def wait_until_in_progress(quill: QuillProcess, requests: int) -> None:
    deadline = time.monotonic() + 10
    while requests_in_progress(quill) < requests + 1:
        assert time.monotonic() < deadline, f"{requests} held requests never reached a worker"
        time.sleep(0.1)


def pending_mail(database_url: str) -> int:
    [count] = query_column(database_url, PENDING_MAIL)
    assert isinstance(count, int)
    return count


def wait_until_no_mail_is_pending(database_url: str) -> None:
    deadline = time.monotonic() + MAIL_SECONDS
    while pending_mail(database_url):
        assert time.monotonic() < deadline, "the queued mail was not sent after the restart"
        time.sleep(0.2)


def mailed_addresses(mail_dir: Path) -> list[str]:
    """The recipient of each message written to `mail_dir`."""
    parser = email.parser.BytesParser(policy=email.policy.default)
    return [
        parseaddr(str(parser.parsebytes(path.read_bytes(), headersonly=True)["To"]))[1]
        for path in mail_dir.glob("*.eml")
    ]


def test_sigterm_finishes_what_is_in_flight_and_the_restart_sends_the_queued_mail(
    own_database_url: str, tmp_path: Path, bytecode_cache: Path
) -> None:
    mail_dir = tmp_path / "mail"
    mail_dir.write_text("Not a folder: mail cannot be written until this file is gone.\n")
    settings = quill_settings(own_database_url, redis_url="", mail_dir=mail_dir)

    with serving(tmp_path / "first", settings, bytecode_cache=bytecode_cache) as quill:
        accounts = open_accounts(quill.url, WRITERS)
        held = [
            HeldRequest(
                quill.url,
                "write",
                "/api/v1/posts/",
                new_post("held post"),
                created="held post",
                headers=bearer(accounts[0].access_token),
            ),
            HeldRequest(
                quill.url,
                "sign-up",
                "/api/v1/users/",
                new_account("held"),
                created="held@example.com",
            ),
        ]
        wait_until_in_progress(quill, len(held))
        traffic = Traffic(lambda: quill.url, accounts, sign_ups=True)
        with running(traffic):
            time.sleep(WARM_UP_SECONDS)
            quill.process.send_signal(signal.SIGTERM)
            time.sleep(SHUTTING_DOWN_SECONDS)
            for request in held:
                request.release()
            exit_code = quill.process.wait(timeout=STOP_SECONDS)
    held_outcomes = [request.outcome() for request in held]
    outcomes = [*traffic.outcomes, *held_outcomes]
    queued_at_stop = pending_mail(own_database_url)

    mail_dir.unlink()
    with serving(tmp_path / "second", settings, bytecode_cache=bytecode_cache) as quill:
        wait_until_no_mail_is_pending(own_database_url)
        with new_client(quill.url) as client:
            after_restart = create_post(client, accounts[0], "after the restart")
    mailed = mailed_addresses(mail_dir)
    writers = {account.email for account in accounts}
    found = stored_titles(own_database_url)
    report(
        "Quill stopped with SIGTERM under traffic, then started again",
        [*outcomes, after_restart],
        # The writers' own welcome mail is checked apart: they signed up before the traffic.
        {"write": found, "sign-up": set(mailed) - writers},
    )
    print(f"  mail     {queued_at_stop} queued when Quill stopped; {len(mailed)} sent after")

    assert exit_code == 0
    assert [(o.status, o.created) for o in held_outcomes] == [
        (201, "held post"),
        (201, "held@example.com"),
    ]
    answered = [o for o in outcomes if o.status is not None]
    assert [o for o in answered if not o.acknowledged] == []
    assert acknowledged(of_kind(outcomes, "write")) - found == set()
    signed_up = acknowledged(of_kind(outcomes, "sign-up"))
    # Every account's welcome, the writers' too: none could be sent in the first run.
    assert queued_at_stop >= len(signed_up | writers)
    assert signed_up | writers <= set(mailed)
    assert after_restart.status == 201
