"""The HTTP contract, in-process: schemathesis generates requests from /openapi.json, sends them
to the ASGI app on SQLite, and fails on any answer the schema does not allow (a 500, a status
code or a body it does not document, valid input rejected, invalid input accepted...).

The small cousin of the CI fuzz step (.ci/fuzz.py: PostgreSQL, a real server, three identities,
stateful scenarios): this one runs with every `pytest`, so a contract break shows before CI.
Each operation is fuzzed as an administrator of its own, which reaches every route; nothing is
left out, since whatever an operation does to its account (delete it, sign it out) ends only
that operation's account.
"""

import itertools
import json
import secrets
import shutil
import tempfile
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast

import pytest
import schemathesis
from fastapi import FastAPI
from hypothesis import HealthCheck, settings
from schemathesis.config import SchemathesisConfig
from schemathesis.python import asgi

from app.cli import create_superuser
from app.core.config import Settings
from app.main import create_app

# Examples per operation and phase: well under a minute for the whole schema.
MAX_EXAMPLES = 10
SEED = 20251201
PASSWORD = secrets.token_urlsafe(16)
_administrators = itertools.count(1)

# Named, not made: the app creates it when it starts, and the fixture that starts it removes it.
DATA_DIR = Path(tempfile.gettempdir()) / f"quill-contract-{secrets.token_hex(8)}"
SETTINGS = Settings(
    ENVIRONMENT="test",
    DATABASE_URL=f"sqlite+aiosqlite:///{DATA_DIR / 'quill.db'}",
    AUTO_MIGRATE=True,
    DATA_DIR=DATA_DIR,
    SECRET_KEY="test-secret-key-that-is-long-enough-for-hs256",
    PASSWORD_HASH_TIME_COST=1,
    PASSWORD_HASH_MEMORY_COST_KIB=8,
    PASSWORD_HASH_PARALLELISM=1,
    # Every operation's administrator signs in, and generated sign-ins and sign-ups add to them,
    # all from one address: far more than the defaults let through. Raised, not turned off, so
    # every answer still goes through the limits and carries their headers.
    RATE_LIMIT_DEFAULT="100000/minute",
    RATE_LIMIT_LOGIN_ACCOUNT="100000/minute",
    RATE_LIMIT_LOGIN_ADDRESS="100000/minute",
    RATE_LIMIT_REGISTER_ADDRESS="100000/minute",
    # Sign-ups queue mail; sending it would draw MIME boundaries from `random` on the app's loop
    # while Hypothesis draws examples, which it takes for a strategy using `random` (an error).
    # Queuing is what the contract covers; the mail tests send.
    MAIL_DISPATCHER_IN_APP=False,
)
APP = create_app(SETTINGS)
# The schema is read from the app, not fetched: importing this module starts nothing. The app
# runs (and its lifespan migrates the database) on schemathesis' own event loop, from the first
# request on.
# A token that the schema allows but that was never mailed is refused as a credential is, with
# a 400 (token_invalid): what schemathesis already expects of the sign-in operation.
TOKEN_CONFIRMATIONS = {
    "include-name": [
        "POST /api/v1/auth/verify-email/confirm",
        "POST /api/v1/auth/password-reset/confirm",
    ],
    "checks": {
        "positive_data_acceptance": {
            # schemathesis' defaults, and 400.
            "expected-statuses": ["2xx", "3xx", "400", "401", "403", "404", "409", "429", "5xx"]
        }
    },
}
REPO_CONFIG = tomllib.loads((Path(__file__).resolve().parents[1] / "schemathesis.toml").read_text())
schema = schemathesis.openapi.from_dict(
    json.loads(json.dumps(APP.openapi())),
    config=SchemathesisConfig.from_dict(
        {
            "seed": SEED,
            "generation": {"max-examples": MAX_EXAMPLES, "database": "none"},
            # The repository's own judgements (schemathesis.toml), as .ci/fuzz.py adds them.
            "operations": [TOKEN_CONFIRMATIONS, *REPO_CONFIG["operations"]],
        }
    ),
)
schema.app = APP


def client() -> asgi.ASGIClient:
    """A requests session to the app, through schemathesis (whose ASGI type is a bit narrower)."""
    return asgi.get_client(cast("asgi.ASGIApp", APP))


@pytest.fixture(scope="module")
def running_app() -> Iterator[FastAPI]:
    with client():
        pass
    yield APP
    asgi.shutdown_lifespans()
    shutil.rmtree(DATA_DIR, ignore_errors=True)


@pytest.fixture
async def administrator(running_app: FastAPI) -> str:
    """A new administrator's username, made once the app has migrated its database."""
    username = f"admin{next(_administrators)}"
    await create_superuser(
        SETTINGS.model_copy(update={"AUTO_MIGRATE": False}),
        username,
        f"{username}@example.com",
        PASSWORD,
    )
    return username


@pytest.fixture
def administrator_headers(administrator: str) -> dict[str, str]:
    with client() as session:
        response = session.post(
            "/api/v1/auth/token", data={"username": administrator, "password": PASSWORD}
        )
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


@schema.parametrize()
# One administrator per operation, shared by its examples, is the point of the fixture. Making
# examples of a nested body (Conduit's {"article": {...}}) can take long on a loaded machine:
# the time goes to hypothesis, and says nothing of the app.
@settings(suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
# Also what puts the operation into each test's id: on pytest 9 schemathesis' own naming reaches
# only parametrized ids ("...[POST /api/v1/users/][sqlite]").
@pytest.mark.parametrize("database", ["sqlite"])
def test_every_answer_is_one_the_schema_allows(
    case: schemathesis.Case[Any], administrator_headers: dict[str, str], database: str
) -> None:
    assert SETTINGS.database_url.startswith(database)
    case.call_and_validate(headers=administrator_headers)
