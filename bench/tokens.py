"""Signing in as the benchmark user, once per server, for the authenticated endpoints."""

import json
import urllib.parse
import urllib.request

from bench import dataset

TIMEOUT_SECONDS = 30


def bearer_authorization(base_url: str) -> str:
    """ "Bearer <jwt>" from the OAuth2 password flow of /api/v1/auth/token."""
    form = urllib.parse.urlencode(
        {"username": dataset.BENCH_USERNAME, "password": dataset.BENCH_PASSWORD}
    ).encode()
    request = urllib.request.Request(  # noqa: S310 (a loopback http URL of our own)
        f"{base_url}/api/v1/auth/token",
        data=form,
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    with urllib.request.urlopen(request, timeout=TIMEOUT_SECONDS) as response:  # noqa: S310
        token: str = json.load(response)["access_token"]
    return f"Bearer {token}"


def conduit_authorization(base_url: str) -> str:
    """ "Token <jwt>", as Conduit clients send it, from POST /api/users/login."""
    body = json.dumps(
        {"user": {"email": dataset.BENCH_EMAIL, "password": dataset.BENCH_PASSWORD}}
    ).encode()
    request = urllib.request.Request(  # noqa: S310 (a loopback http URL of our own)
        f"{base_url}/api/users/login", data=body, headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=TIMEOUT_SECONDS) as response:  # noqa: S310
        token: str = json.load(response)["user"]["token"]
    return f"Token {token}"
