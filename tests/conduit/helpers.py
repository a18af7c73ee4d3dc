"""What the Conduit tests share: signing up and in through /api, and the one check of an error
answer in Conduit's format."""

from typing import Any

import httpx

CONDUIT_PASSWORD = "password123"


def token(value: str) -> dict[str, str]:
    """The Authorization header Conduit's clients send."""
    return {"Authorization": f"Token {value}"}


async def sign_up(
    client: httpx.AsyncClient, username: str, *, email: str | None = None
) -> dict[str, Any]:
    """Register through /api; the `user` of the answer (with its token)."""
    response = await client.post(
        "/api/users",
        json={
            "user": {
                "username": username,
                "email": email or f"{username}@example.com",
                "password": CONDUIT_PASSWORD,
            }
        },
    )
    assert response.status_code == 201, response.text
    user: dict[str, Any] = response.json()["user"]
    return user


async def sign_in(
    client: httpx.AsyncClient, email: str, password: str = CONDUIT_PASSWORD
) -> httpx.Response:
    return await client.post(
        "/api/users/login", json={"user": {"email": email, "password": password}}
    )


async def token_of(client: httpx.AsyncClient, email: str, password: str = CONDUIT_PASSWORD) -> str:
    response = await sign_in(client, email, password)
    assert response.status_code == 200, response.text
    value: str = response.json()["user"]["token"]
    return value


def assert_errors(
    response: httpx.Response, status: int, errors: dict[str, list[str]] | None = None
) -> dict[str, list[str]]:
    """The response is a Conduit error of this status (and these errors, when given): its
    `errors`, each key with at least one message."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert set(body) == {"errors"}, body
    found: dict[str, list[str]] = body["errors"]
    assert found, body
    for key, messages in found.items():
        assert isinstance(key, str)
        assert messages, key
        assert all(isinstance(message, str) and message for message in messages), key
    if errors is not None:
        assert found == errors
    assert response.headers["X-Request-ID"]
    return found


def assert_unauthorized(response: httpx.Response, message: str = "is invalid") -> None:
    """A 401 in Conduit's format, which asks for a Token."""
    assert_errors(response, 401, {"token": [message]})
    assert response.headers["WWW-Authenticate"] == "Token"
