"""PostgreSQL restarts under steady traffic: Quill answers 503 with Retry-After while it is gone,
promptly, serves again by itself once it is back, and loses no write it acknowledged."""

import time
from pathlib import Path

import pytest

from tests.faults.postgres_server import PostgresServer
from tests.faults.quill import quill_settings, serving, stored_titles
from tests.faults.traffic import Traffic, acknowledged, of_kind, open_accounts, report, running

pytestmark = pytest.mark.faults

WRITERS = [f"writer{n}" for n in range(1, 5)]
WARM_UP_SECONDS = 2.0
OUTAGE_SECONDS = 3.0
AFTER_SECONDS = 5.0
# Every answer comes within this, the outage's included: refusing takes no waiting.
SLOWEST_ANSWER_SECONDS = 5.0
# From PostgreSQL's return until every request succeeds again (pooled connections are dead).
RECOVERY_SECONDS = 2.0


def test_a_postgresql_restart_costs_503s_and_no_acknowledged_write(
    postgres_server: PostgresServer, own_database_url: str, tmp_path: Path, bytecode_cache: Path
) -> None:
    settings = quill_settings(own_database_url, redis_url="", mail_dir=tmp_path / "mail")
    with serving(tmp_path / "quill", settings, bytecode_cache=bytecode_cache) as quill:
        traffic = Traffic(lambda: quill.url, open_accounts(quill.url, WRITERS))
        with running(traffic):
            time.sleep(WARM_UP_SECONDS)
            postgres_server.stop()
            time.sleep(OUTAGE_SECONDS)
            postgres_server.start()
            back_at = time.monotonic()
            time.sleep(AFTER_SECONDS)
    outcomes = traffic.outcomes
    found = stored_titles(own_database_url)
    report(
        f"PostgreSQL restarted under traffic (down {OUTAGE_SECONDS:.0f} s)",
        outcomes,
        {"write": found},
    )

    unexpected = [o for o in outcomes if o.status not in (200, 201, 503)]
    assert unexpected == []
    refused = [o for o in outcomes if o.status == 503]
    assert refused, "no request met the outage"
    assert {(o.code, o.retry_after) for o in refused} == {("database_unavailable", "5")}
    assert max(o.seconds for o in outcomes) < SLOWEST_ANSWER_SECONDS
    since_recovery = [o for o in outcomes if o.sent_at > back_at + RECOVERY_SECONDS]
    assert since_recovery
    assert [o for o in since_recovery if not o.acknowledged] == []
    assert acknowledged(of_kind(outcomes, "write")) - found == set()
