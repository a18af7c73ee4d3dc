"""Steady traffic against a running Quill, and a record of every answer it got.

Each writer is a thread with an account of its own: it creates a post (with a title no other
request uses, so that it can be looked for in the database afterwards) and reads the newest posts
anonymously, round after round at a steady pace, each round on a new connection (so that rounds
spread over the workers), until the traffic stops. A registrar, if asked for, signs up new
accounts the same way. Every request ends in an Outcome:
its status and the headers the checks need, or, when no answer came, what happened instead.
"""

import itertools
import json
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Literal, get_args

import httpx

from tests.factories import bearer

PASSWORD = "a long password"
# Longer than any answer may take: a request still unanswered by then has hung.
CLIENT_TIMEOUT_SECONDS = 15.0
# Between two rounds of one thread: steady traffic that leaves the two cores to the servers.
PAUSE_SECONDS = 0.02

Kind = Literal["write", "read", "sign-up", "sign-in"]


@dataclass(frozen=True)
class Outcome:
    kind: Kind
    # When the request was sent (time.monotonic()), and how long its answer took.
    sent_at: float
    seconds: float
    # None when no answer came (refused, reset, timed out): `error` says which.
    status: int | None
    code: str | None = None
    retry_after: str | None = None
    rate_limit_remaining: str | None = None
    # What a write or a sign-up asked to create: the post's title, the account's address.
    created: str | None = None
    error: str | None = None
    body: Any = field(default=None, repr=False, compare=False)
    # Sent as X-Request-ID: what the server's log lines about this request carry.
    request_id: str = ""

    @property
    def acknowledged(self) -> bool:
        return self.status is not None and 200 <= self.status < 300

    def __str__(self) -> str:
        answer = f"{self.status} {self.code or ''}".strip() if self.status else self.error
        return f"{self.kind} {self.created or ''} -> {answer} after {self.seconds:.2f} s"


@dataclass(frozen=True)
class Account:
    username: str
    email: str
    access_token: str


def send(
    client: httpx.Client,
    kind: Kind,
    method: str,
    path: str,
    *,
    created: str | None = None,
    json: Mapping[str, Any] | None = None,
    data: Mapping[str, str] | None = None,
    content: Iterator[bytes] | None = None,
    headers: Mapping[str, str] | None = None,
) -> Outcome:
    """One request, whatever becomes of it."""
    request_id = uuid.uuid4().hex
    headers = {"X-Request-ID": request_id, **(headers or {})}
    sent_at = time.monotonic()
    try:
        response = client.request(
            method, path, json=json, data=data, content=content, headers=headers
        )
    except httpx.TransportError as exc:
        seconds = time.monotonic() - sent_at
        return Outcome(
            kind,
            sent_at,
            seconds,
            None,
            created=created,
            error=type(exc).__name__,
            request_id=request_id,
        )
    seconds = time.monotonic() - sent_at
    is_json = response.headers.get("content-type", "").endswith("json")
    body = response.json() if is_json else None
    return Outcome(
        kind,
        sent_at,
        seconds,
        response.status_code,
        code=body.get("code") if isinstance(body, dict) and response.status_code >= 400 else None,
        retry_after=response.headers.get("retry-after"),
        rate_limit_remaining=response.headers.get("ratelimit-remaining"),
        created=created,
        body=body,
        request_id=request_id,
    )


def new_account(username: str) -> dict[str, str]:
    return {"username": username, "email": f"{username}@example.com", "password": PASSWORD}


def sign_up(client: httpx.Client, username: str) -> Outcome:
    account = new_account(username)
    return send(client, "sign-up", "POST", "/api/v1/users/", created=account["email"], json=account)


def sign_in(client: httpx.Client, username: str) -> Outcome:
    credentials = {"username": username, "password": PASSWORD}
    return send(client, "sign-in", "POST", "/api/v1/auth/token", data=credentials)


def new_post(title: str) -> dict[str, str]:
    return {"title": title, "content": "Written while something was failing."}


def create_post(client: httpx.Client, account: Account, title: str) -> Outcome:
    post = new_post(title)
    return send(
        client,
        "write",
        "POST",
        "/api/v1/posts/",
        created=title,
        json=post,
        headers=bearer(account.access_token),
    )


def read_newest(client: httpx.Client) -> Outcome:
    return send(client, "read", "GET", "/api/v1/posts/")


def new_client(base_url: str) -> httpx.Client:
    return httpx.Client(base_url=base_url, timeout=CLIENT_TIMEOUT_SECONDS)


def open_accounts(base_url: str, usernames: Iterable[str]) -> list[Account]:
    """Sign these accounts up and in, before any fault: the traffic writes as them."""
    accounts = []
    with new_client(base_url) as client:
        for username in usernames:
            signed_up = sign_up(client, username)
            assert signed_up.status == 201, signed_up
            signed_in = sign_in(client, username)
            assert signed_in.status == 200, signed_in
            token = signed_in.body["access_token"]
            accounts.append(Account(username, f"{username}@example.com", token))
    return accounts


class Traffic:
    """Writers (one thread per account) and, with `sign_ups`, a registrar, from start() to stop().

    `base_url` is asked before each round, so that traffic can follow a server that moved.
    """

    def __init__(
        self, base_url: Callable[[], str], accounts: Sequence[Account], *, sign_ups: bool = False
    ) -> None:
        self._base_url = base_url
        self._accounts = accounts
        self._sign_ups = sign_ups
        self._stopping = threading.Event()
        self._lock = threading.Lock()
        self._outcomes: list[Outcome] = []
        self._threads: list[threading.Thread] = []

    @property
    def outcomes(self) -> list[Outcome]:
        with self._lock:
            return list(self._outcomes)

    def start(self) -> None:
        self._threads = [
            threading.Thread(target=self._write_as, args=[account], name=account.username)
            for account in self._accounts
        ]
        if self._sign_ups:
            self._threads.append(threading.Thread(target=self._sign_up, name="registrar"))
        for thread in self._threads:
            thread.start()

    def stop(self) -> None:
        self._stopping.set()
        for thread in self._threads:
            thread.join(timeout=CLIENT_TIMEOUT_SECONDS * 2)
            assert not thread.is_alive(), f"the traffic thread {thread.name} did not stop"

    def _record(self, *outcomes: Outcome) -> None:
        with self._lock:
            self._outcomes.extend(outcomes)

    def _repeat(self, one_round: Callable[[httpx.Client, int], Sequence[Outcome]]) -> None:
        """Round 1, 2, 3... each on a new connection (to whichever worker accepts it, of the
        server at `base_url` now), until stopped."""
        for number in itertools.count(1):
            if self._stopping.is_set():
                return
            with new_client(self._base_url()) as client:
                self._record(*one_round(client, number))
            self._stopping.wait(PAUSE_SECONDS)

    def _write_as(self, account: Account) -> None:
        self._repeat(
            lambda client, number: [
                create_post(client, account, f"{account.username} post {number}"),
                read_newest(client),
            ]
        )

    def _sign_up(self) -> None:
        self._repeat(lambda client, number: [sign_up(client, f"newcomer{number}")])


class HeldRequest:
    """A JSON POST whose body stops halfway until released: in progress, in whichever worker
    accepted it, for as long as a test needs."""

    def __init__(
        self,
        base_url: str,
        kind: Kind,
        path: str,
        body: Mapping[str, str],
        *,
        created: str,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        encoded = json.dumps(body).encode()
        self._halves = encoded[: len(encoded) // 2], encoded[len(encoded) // 2 :]
        self._released = threading.Event()
        self._outcome: Outcome | None = None
        headers = {"Content-Type": "application/json", **(headers or {})}

        def hold() -> None:
            with new_client(base_url) as client:
                self._outcome = send(
                    client,
                    kind,
                    "POST",
                    path,
                    created=created,
                    content=self._body(),
                    headers=headers,
                )

        # A daemon: a test that fails before releasing it must still be able to end.
        self._thread = threading.Thread(target=hold, name=f"held {kind}", daemon=True)
        self._thread.start()

    def _body(self) -> Iterator[bytes]:
        first, second = self._halves
        yield first
        self._released.wait()
        yield second

    def release(self) -> None:
        """Send the rest of the body."""
        self._released.set()

    def outcome(self) -> Outcome:
        """How the request ended (released first)."""
        self._thread.join(timeout=CLIENT_TIMEOUT_SECONDS * 2)
        assert self._outcome is not None, "the held request never ended"
        return self._outcome


@contextmanager
def running(traffic: Traffic) -> Iterator[Traffic]:
    traffic.start()
    try:
        yield traffic
    finally:
        traffic.stop()


def of_kind(outcomes: Iterable[Outcome], kind: Kind) -> list[Outcome]:
    return [outcome for outcome in outcomes if outcome.kind == kind]


def acknowledged(outcomes: Iterable[Outcome]) -> set[str]:
    """What the acknowledged requests created (titles, addresses)."""
    return {o.created for o in outcomes if o.acknowledged and o.created is not None}


def report(title: str, outcomes: Sequence[Outcome], found: Mapping[Kind, set[str]]) -> None:
    """Print what was sent, what was acknowledged, and, for each kind in `found`, how much of what
    was acknowledged was found afterwards."""
    print(f"\nfaults: {title}")
    for kind in get_args(Kind):
        sent = of_kind(outcomes, kind)
        if not sent:
            continue
        answers = Counter(str(o.status) if o.status else str(o.error) for o in sent)
        summary = ", ".join(f"{count} x {answer}" for answer, count in sorted(answers.items()))
        slowest = max(o.seconds for o in sent)
        done = [o for o in sent if o.acknowledged]
        print(
            f"  {kind:8} sent {len(sent)}, acknowledged {len(done)} ({summary});"
            f" slowest answer {slowest:.2f} s"
        )
        if kind in found:
            wanted = acknowledged(sent)
            there = found[kind]
            print(
                f"  {'':8} found afterwards: {len(wanted & there)} of the {len(wanted)}"
                f" acknowledged; {len(there - wanted)} more that were not acknowledged"
            )
