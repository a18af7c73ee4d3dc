"""The fuzz step of CI: Quill on PostgreSQL, probed by schemathesis with every check.

    .venv/bin/python .ci/fuzz.py          (.ci/run does this after the tests)

1. creates a PostgreSQL database of its own (dropped at the end, whatever happens) and migrates it;
2. creates an administrator with `app.cli create-superuser`;
3. starts Quill with `fastapi run` on a free loopback port, production settings, cheap argon2,
   an access token that outlives the run and rate limits it never reaches, and waits for /health;
4. signs up two ordinary users over HTTP, and signs the three identities in;
5. runs `st run` on /openapi.json: every check, the examples, coverage, fuzzing and stateful
   phases, a fixed seed, as `alice`, `bob` (peers for object_level_authorization) and `admin`;
6. checks that the three identities still work, stops the server, and prints the summary line.

The only operation left out is DELETE /api/v1/users/me, and the only request changed is an
administrator's PATCH/DELETE /api/v1/users/{user_id} aimed at a fuzzing identity, which goes to
a stand-in account instead (.ci/fuzz_hooks.py): both would end the identities mid-run.

Settings, from the environment:
    FUZZ_MAX_EXAMPLES   test cases per operation and phase (default 50, which takes the whole
                        step 1 to 3.5 minutes on a 2-core machine; a nightly run: 500)
    FUZZ_SEED           the generation seed (default 20251201)
    FUZZ_WORKERS        concurrent schemathesis workers (default 2)
    FUZZ_POSTGRES_URL   a server on which this may create and drop a database (default
                        TEST_DATABASE_URL, else postgresql://postgres@127.0.0.1:5432/postgres)
    FUZZ_REDIS_URL      the Redis the server caches and limits through (default TEST_REDIS_URL;
                        empty: none), under a key prefix of this run's own
    FUZZ_REPORT_DIR     if set, schemathesis writes JUnit and NDJSON reports there

Exit status: schemathesis' own (nonzero on any failure), or 1 when setting up failed or an
identity stopped working. On failure the server log is printed.
"""

import json
import os
import re
import secrets
import signal
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType

import httpx
from harness import (
    DEFAULT_POSTGRES_URL,
    ROOT,
    VENV_BIN,
    SetupError,
    StepLog,
    postgres_database,
    quill_server,
    run_quietly,
)

HOOKS = Path(__file__).resolve().with_name("fuzz_hooks.py")
REPO_CONFIG = ROOT / "schemathesis.toml"

MAX_EXAMPLES = int(os.environ.get("FUZZ_MAX_EXAMPLES", "50"))
SEED = int(os.environ.get("FUZZ_SEED", "20251201"))
WORKERS = int(os.environ.get("FUZZ_WORKERS", "2"))
POSTGRES_URL = os.environ.get("FUZZ_POSTGRES_URL") or DEFAULT_POSTGRES_URL
REPORT_DIR = os.environ.get("FUZZ_REPORT_DIR", "")
REDIS_URL = os.environ.get("FUZZ_REDIS_URL", os.environ.get("TEST_REDIS_URL", ""))

# Would end the fuzzing identity that calls it; tests/users/test_router.py covers it.
EXCLUDED_OPERATIONS = ("DELETE /api/v1/users/me",)
PEERS = ("alice", "bob")
# Operations that take the token of a mailed link; any other token is a 400.
TOKEN_CONFIRMATIONS = (
    "POST /api/v1/auth/verify-email/confirm",
    "POST /api/v1/auth/password-reset/confirm",
)
# schemathesis' defaults for positive_data_acceptance, and 400.
TOKEN_CONFIRMATION_STATUSES = ["2xx", "3xx", "400", "401", "403", "404", "409", "429", "5xx"]
PASSWORD = secrets.token_urlsafe(16)
ACCESS_TOKEN_TTL_SECONDS = 24 * 3600
FUZZ_RATE_LIMIT = "1000000/minute"


@dataclass(frozen=True)
class Identity:
    name: str
    id: int
    token: str


log = StepLog("fuzz")


# --- the server's settings ---------------------------------------------------------------------


def quill_environment(database_url: str, data_dir: Path) -> dict[str, str]:
    """Production settings, except for cheap password hashes, a long-lived access token and
    rate limits far above what the fuzz sends (thousands of requests, sign-ins and sign-ups
    from one address): raised, not turned off, so every answer still passes through them."""
    environment = {key: value for key, value in os.environ.items() if not key.startswith("FUZZ_")}
    environment.update(
        ENVIRONMENT="production",
        DATABASE_URL=database_url,
        AUTO_MIGRATE="false",
        DATA_DIR=str(data_dir),
        SECRET_KEY=secrets.token_urlsafe(48),
        ACCESS_TOKEN_TTL_SECONDS=str(ACCESS_TOKEN_TTL_SECONDS),
        PASSWORD_HASH_TIME_COST="1",
        PASSWORD_HASH_MEMORY_COST_KIB="8",
        PASSWORD_HASH_PARALLELISM="1",
        RATE_LIMIT_DEFAULT=FUZZ_RATE_LIMIT,
        RATE_LIMIT_LOGIN_ACCOUNT=FUZZ_RATE_LIMIT,
        RATE_LIMIT_LOGIN_ADDRESS=FUZZ_RATE_LIMIT,
        RATE_LIMIT_REGISTER_ADDRESS=FUZZ_RATE_LIMIT,
        # Production refuses to start without SMTP_HOST: the fuzzer's mail goes to files.
        MAIL_BACKEND="file",
        # With Redis, public reads are answered from the response cache, as in production.
        REDIS_URL=REDIS_URL,
        REDIS_KEY_PREFIX=f"quill-fuzz:{secrets.token_hex(8)}:",
    )
    return environment


# --- the identities ---------------------------------------------------------------------------


def sign_up(client: httpx.Client, username: str, email: str) -> int:
    response = client.post(
        "/api/v1/users/", json={"username": username, "email": email, "password": PASSWORD}
    )
    if response.status_code != 201:
        raise SetupError(f"signing up {username} got {response.status_code}: {response.text}")
    user_id: int = response.json()["id"]
    return user_id


def sign_in(client: httpx.Client, name: str, username: str, user_id: int) -> Identity:
    response = client.post("/api/v1/auth/token", data={"username": username, "password": PASSWORD})
    if response.status_code != 200:
        raise SetupError(f"signing in {username} got {response.status_code}: {response.text}")
    token = response.json()["access_token"]
    return Identity(name=name, id=user_id, token=token)


def create_superuser(environment: dict[str, str]) -> int:
    """The administrator, made as the README says: `app.cli create-superuser`. Its id."""
    output = run_quietly(
        [
            sys.executable,
            "-m",
            "app.cli",
            "create-superuser",
            "--username",
            "fuzz_admin",
            "--email",
            "fuzz_admin@example.com",
            "--password-stdin",
        ],
        environment,
        stdin=f"{PASSWORD}\n",
    )
    found = re.search(r"\(id (\d+)\)", output)
    if found is None:
        raise SetupError(f"create-superuser did not say which id it created: {output}")
    return int(found.group(1))


def create_identities(base_url: str, admin_id: int) -> list[Identity]:
    """alice, bob and admin, signed in."""
    with httpx.Client(base_url=base_url, timeout=10) as client:
        alice_id = sign_up(client, "fuzz_alice", "fuzz_alice@example.com")
        bob_id = sign_up(client, "fuzz_bob", "fuzz_bob@example.com")
        return [
            # The first is every operation's first try; the administrator comes last, so an
            # operation is only fuzzed as an administrator when ordinary users are refused.
            sign_in(client, "alice", "fuzz_alice", alice_id),
            sign_in(client, "bob", "fuzz_bob", bob_id),
            sign_in(client, "admin", "fuzz_admin", admin_id),
        ]


def broken_identities(base_url: str, identities: list[Identity]) -> list[str]:
    """The identities that no longer work as they did: the fuzz must not end its own users."""
    broken = []
    with httpx.Client(base_url=base_url, timeout=10) as client:
        for identity in identities:
            headers = {"Authorization": f"Bearer {identity.token}"}
            me = client.get("/api/v1/users/me", headers=headers)
            if me.status_code != 200 or me.json().get("id") != identity.id:
                broken.append(f"{identity.name}: GET /api/v1/users/me -> {me.status_code}")
            elif identity.name == "admin":
                users = client.get("/api/v1/users/", headers=headers)
                if users.status_code != 200:
                    broken.append(f"admin: GET /api/v1/users/ -> {users.status_code}")
    return broken


# --- schemathesis -----------------------------------------------------------------------------


def write_schemathesis_config(workdir: Path, identities: list[Identity]) -> Path:
    """A Web Fuzzing Commons auth file (schemathesis/wfc/loader.py) and the config naming it.

    With several entries and `peers`, schemathesis tries each operation as the first entry, then
    anonymously, then as the next ones in order until one is let in (wfc/escalation.py), and
    replays the peers' reads as each other for object_level_authorization.
    """
    auth_file = workdir / "wfc-auth.json"
    document = {
        "auth": [
            {
                "name": identity.name,
                "fixedHeaders": [{"name": "Authorization", "value": f"Bearer {identity.token}"}],
            }
            for identity in identities
        ],
    }
    auth_file.write_text(json.dumps(document, indent=2))
    config_file = workdir / "schemathesis.toml"
    peers = ", ".join(json.dumps(peer) for peer in PEERS)
    token_confirmations = ", ".join(json.dumps(name) for name in TOKEN_CONFIRMATIONS)
    config_file.write_text(
        f"hooks = {json.dumps(str(HOOKS))}\n\n"
        "[auth.wfc]\n"
        f"path = {json.dumps(str(auth_file))}\n"
        f"peers = [{peers}]\n\n"
        # A token the schema allows but nobody mailed is refused as a credential is, with a 400
        # (token_invalid): what schemathesis already expects of the sign-in operation.
        "[[operations]]\n"
        f"include-name = [{token_confirmations}]\n"
        "[operations.checks.positive_data_acceptance]\n"
        f"expected-statuses = {json.dumps(TOKEN_CONFIRMATION_STATUSES)}\n\n"
        # The repository's own judgements (its schemathesis.toml), after these.
        f"{REPO_CONFIG.read_text()}"
    )
    return config_file


def schemathesis_command(config_file: Path, base_url: str) -> list[str]:
    command = [
        str(VENV_BIN / "st"),
        "--config-file",
        str(config_file),
        "run",
        f"{base_url}/openapi.json",
        "--checks",
        "all",
        "--phases",
        "examples,coverage,fuzzing,stateful",
        "--seed",
        str(SEED),
        "--max-examples",
        str(MAX_EXAMPLES),
        "--workers",
        str(WORKERS),
        # Runs repeat with the seed alone, not with examples an earlier run stored.
        "--generation-database",
        "none",
        "--no-color",
        # Every distinct failure of an operation, not only its first.
        "--continue-on-failure",
        # Shown verbatim, a failure can be replayed with curl. Nothing here is a secret: the
        # passwords are generated and the tokens die with the server and its random SECRET_KEY.
        "--output-sanitize",
        "false",
    ]
    for operation in EXCLUDED_OPERATIONS:
        command += ["--exclude-name", operation]
    if REPORT_DIR:
        command += ["--report", "junit,ndjson", "--report-dir", REPORT_DIR]
    return command


def run_schemathesis(
    command: list[str], environment: dict[str, str], workdir: Path
) -> tuple[int, str]:
    """Its exit status and its summary line; its output goes straight through."""
    summary = ""
    with subprocess.Popen(
        command, cwd=workdir, env=environment, stdout=subprocess.PIPE, text=True
    ) as process:
        assert process.stdout is not None
        try:
            for line in process.stdout:
                sys.stdout.write(line)
                # The summary is the last banner ("==== 2 failures in 93.10s ====").
                if re.fullmatch(r"=+ .+ =+", line.strip()):
                    summary = line.strip()
        except BaseException:
            # Stopped ourselves (SIGTERM, Ctrl-C): schemathesis must not outlive the server.
            process.terminate()
            raise
    sys.stdout.flush()
    return process.returncode, summary


# --- the step ---------------------------------------------------------------------------------


@dataclass
class Outcome:
    status: int = 1
    summary: str = ""
    broken: list[str] = field(default_factory=list)


def fuzz(workdir: Path, server_log: Path, outcome: Outcome) -> None:
    with postgres_database(POSTGRES_URL, "quill_fuzz") as database_url:
        environment = quill_environment(database_url, workdir / "data")
        log("migrating a new PostgreSQL database")
        run_quietly([sys.executable, "-m", "alembic", "upgrade", "head"], environment)
        log("starting Quill, and meanwhile creating the administrator")
        with quill_server(environment, server_log) as (base_url, wait_until_up):
            admin_id = create_superuser(environment)
            wait_until_up()
            log(f"Quill answers on {base_url}; signing up and in")
            identities = create_identities(base_url, admin_id)
            config_file = write_schemathesis_config(workdir, identities)
            command = schemathesis_command(config_file, base_url)
            hooks_environment = {
                **os.environ,
                "FUZZ_BASE_URL": base_url,
                "FUZZ_PROTECTED_USER_IDS": ",".join(str(i.id) for i in identities),
            }
            log(f"seed {SEED}, {MAX_EXAMPLES} examples: {' '.join(command[1:])}")
            outcome.status, outcome.summary = run_schemathesis(command, hooks_environment, workdir)
            outcome.broken = broken_identities(base_url, identities)
            if outcome.broken:
                outcome.status = outcome.status or 1


def main() -> int:
    # CI stops a job with SIGTERM: unwind, so the server stops and the database is dropped.
    def stop(signum: int, frame: FrameType | None) -> None:
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, stop)
    outcome = Outcome()
    with tempfile.TemporaryDirectory(prefix="quill-fuzz-") as directory:
        workdir = Path(directory)
        server_log = workdir / "server.log"
        try:
            fuzz(workdir, server_log, outcome)
        except SetupError as exc:
            log(f"setting up failed: {exc}")
        if outcome.status and server_log.exists():
            log("the server log:")
            sys.stdout.write(server_log.read_text(errors="replace"))
    for problem in outcome.broken:
        log(f"the fuzz ended its own identity, so its results cannot be trusted: {problem}")
    log(f"schemathesis: {outcome.summary or 'no summary'}")
    verdict = "FAILED" if outcome.status else "passed"
    log(f"{verdict} (exit {outcome.status})")
    return outcome.status


if __name__ == "__main__":
    raise SystemExit(main())
