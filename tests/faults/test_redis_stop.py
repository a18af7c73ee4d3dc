"""Redis stops under steady traffic: reads and writes go on (the cache is skipped, the general
limit is counted in each worker's memory), sign-ins fail closed with 503 until Redis is back,
and nothing acknowledged is lost."""

import time
from pathlib import Path

import pytest

from tests.faults.quill import quill_settings, serving, stored_titles
from tests.faults.traffic import (
    Outcome,
    Traffic,
    acknowledged,
    new_client,
    of_kind,
    open_accounts,
    report,
    running,
    sign_in,
)
from tests.quill_process import QuillProcess, log_entries
from tests.redis_server import RedisServer

pytestmark = pytest.mark.faults

WRITERS = [f"writer{n}" for n in range(1, 5)]
WARM_UP_SECONDS = 2.0
OUTAGE_SECONDS = 4.0
SIGN_IN_ATTEMPTS_DURING_OUTAGE = 4
AFTER_SECONDS = 2.0
# A Redis that is gone costs a request its short timeout at most (REDIS_SOCKET_TIMEOUT_SECONDS).
SLOWEST_ANSWER_SECONDS = 5.0
# REDIS_RETRY_SECONDS (2 s by default) after its last failure, each worker tries Redis again.
RECOVERY_SECONDS = 10.0


def sign_in_once(quill: QuillProcess, username: str) -> Outcome:
    with new_client(quill.url) as client:
        return sign_in(client, username)


def sign_in_until_it_succeeds(quill: QuillProcess, username: str) -> list[Outcome]:
    attempts = [sign_in_once(quill, username)]
    deadline = time.monotonic() + RECOVERY_SECONDS
    while attempts[-1].status != 200 and time.monotonic() < deadline:
        time.sleep(0.5)
        attempts.append(sign_in_once(quill, username))
    return attempts


def logged_events(quill: QuillProcess) -> set[str]:
    return {entry["event"] for entry in log_entries(quill.log)}


def test_reads_and_writes_go_on_without_redis_and_sign_ins_fail_closed(
    redis_server: RedisServer, own_database_url: str, tmp_path: Path, bytecode_cache: Path
) -> None:
    settings = quill_settings(own_database_url, redis_server.url, mail_dir=tmp_path / "mail")
    with serving(tmp_path / "quill", settings, bytecode_cache=bytecode_cache) as quill:
        accounts = open_accounts(quill.url, WRITERS)
        traffic = Traffic(lambda: quill.url, accounts)
        with running(traffic):
            time.sleep(WARM_UP_SECONDS)
            redis_server.stop()
            during_outage = []
            for _ in range(SIGN_IN_ATTEMPTS_DURING_OUTAGE):
                time.sleep(OUTAGE_SECONDS / SIGN_IN_ATTEMPTS_DURING_OUTAGE)
                during_outage.append(sign_in_once(quill, accounts[0].username))
            redis_server.start()
            after_outage = sign_in_until_it_succeeds(quill, accounts[0].username)
            time.sleep(AFTER_SECONDS)
        events = logged_events(quill)
    outcomes = traffic.outcomes
    found = stored_titles(own_database_url)
    report(
        f"Redis stopped under traffic for {OUTAGE_SECONDS:.0f} s, then started again",
        [*outcomes, *during_outage, *after_outage],
        {"write": found},
    )

    assert {"redis.unavailable", "redis.recovered"} <= events
    assert [o for o in outcomes if not o.acknowledged] == []
    assert max(o.seconds for o in [*outcomes, *during_outage]) < SLOWEST_ANSWER_SECONDS
    # The general limit still counts every request, in each worker's memory.
    assert all(o.rate_limit_remaining is not None for o in outcomes)
    assert {(o.status, o.code, o.retry_after) for o in during_outage} == {
        (503, "rate_limit_unavailable", "5")
    }
    assert after_outage[-1].status == 200
    assert acknowledged(of_kind(outcomes, "write")) - found == set()
