import asyncio
import json
import socket
from collections.abc import AsyncIterator
from typing import Any

import anyio
import httpx
import pytest
import uvicorn
from fastapi import FastAPI
from starlette.responses import PlainTextResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.api import API_V1_SURFACE
from app.core.body_limit import BodyLimitMiddleware, BodyTooLarge
from app.core.config import Settings
from app.core.surfaces import Surfaces
from app.main import create_app
from tests.conftest import Serve
from tests.helpers import assert_problem

LIMIT = 1024
POSTS = "/api/v1/posts/"
TWO_GB = 2 * 1024**3
NOT_A_TOKEN = {"Authorization": "Bearer not-a-token"}


@pytest.fixture
def small_limit_app(settings: Settings) -> FastAPI:
    return create_app(settings.model_copy(update={"MAX_REQUEST_BODY_BYTES": LIMIT}))


def assert_too_large(response: httpx.Response, limit: int) -> None:
    body = assert_problem(response, 413, "payload_too_large")
    assert body["max_body_bytes"] == limit
    assert str(limit) in body["detail"]
    assert response.headers["Connection"] == "close"
    assert response.headers["X-Content-Type-Options"] == "nosniff"


def json_of_size(size: int) -> bytes:
    """A post of exactly `size` bytes of JSON."""
    empty = len(json.dumps({"title": "t", "content": ""}))
    return json.dumps({"title": "t", "content": "x" * (size - empty)}).encode()


async def chunks(body: bytes, *, size: int = 100) -> AsyncIterator[bytes]:
    """`body` in pieces, with no Content-Length: sent chunked."""
    for start in range(0, len(body), size):
        yield body[start : start + size]


async def test_a_declared_length_over_the_limit_is_refused_before_authentication(
    client: httpx.AsyncClient, settings: Settings
) -> None:
    response = await client.post(
        POSTS,
        content=b"{}",
        headers={**NOT_A_TOKEN, "Content-Length": str(TWO_GB), "Content-Type": "application/json"},
    )

    assert_too_large(response, settings.MAX_REQUEST_BODY_BYTES)


async def test_a_declared_length_over_the_limit_is_answered_without_reading_the_body(
    app: FastAPI, settings: Settings
) -> None:
    reads = 0

    async def receive() -> Message:
        nonlocal reads
        reads += 1
        await anyio.sleep_forever()
        raise AssertionError("unreachable")

    sent: list[Message] = []

    async def send(message: Message) -> None:
        sent.append(message)

    scope: dict[str, Any] = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": POSTS,
        "raw_path": POSTS.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [
            (b"host", b"test"),
            (b"content-type", b"application/json"),
            (b"content-length", str(TWO_GB).encode()),
            (b"authorization", b"Bearer not-a-token"),
        ],
        "client": ("127.0.0.1", 50000),
        "server": ("test", 80),
    }
    with anyio.fail_after(5):
        await app(scope, receive, send)

    assert reads == 0
    start, body = sent[0], b"".join(message.get("body", b"") for message in sent[1:])
    assert start["status"] == 413
    assert json.loads(body)["code"] == "payload_too_large"
    assert json.loads(body)["max_body_bytes"] == settings.MAX_REQUEST_BODY_BYTES


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


async def test_a_served_app_answers_a_declared_2_gb_at_once_and_closes_the_connection(
    app: FastAPI, settings: Settings
) -> None:
    port = free_port()
    # The fixture has run the app's lifespan; the server only serves it.
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, lifespan="off", log_config=None)
    )
    serving = asyncio.create_task(server.serve())
    try:
        # uvicorn says it listens only through this flag.
        while not server.started:  # noqa: ASYNC110
            await asyncio.sleep(0.01)
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            writer.write(
                f"POST {POSTS} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                f"Content-Length: {TWO_GB}\r\nAuthorization: Bearer x\r\n\r\n{{}}".encode()
            )
            await writer.drain()
            with anyio.fail_after(5):
                # Read to the end: the server closes the connection instead of reading 2 GB.
                answer = await reader.read(-1)
        finally:
            writer.close()
    finally:
        # A server still waiting for the body would wait for it on shutdown too.
        server.should_exit = server.force_exit = True
        await serving

    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 413 ")
    assert b"connection: close" in head.lower()
    assert json.loads(body)["code"] == "payload_too_large"
    assert json.loads(body)["max_body_bytes"] == settings.MAX_REQUEST_BODY_BYTES


async def test_a_chunked_body_over_the_limit_is_refused_once_it_is_over(
    small_limit_app: FastAPI, serve: Serve
) -> None:
    pieces_sent = 0

    async def a_hundred_times_the_limit() -> AsyncIterator[bytes]:
        nonlocal pieces_sent
        for _ in range(LIMIT):
            pieces_sent += 1
            yield b"x" * 100

    async with serve(small_limit_app) as client:
        response = await client.post(
            POSTS, content=a_hundred_times_the_limit(), headers=NOT_A_TOKEN
        )

    assert "Content-Length" not in response.request.headers
    assert_too_large(response, LIMIT)
    # Reading stopped with the piece that went over.
    assert pieces_sent == LIMIT // 100 + 1


@pytest.mark.parametrize("chunked", [True, False])
async def test_a_body_of_exactly_the_limit_is_read(
    small_limit_app: FastAPI, serve: Serve, chunked: bool
) -> None:
    body = json_of_size(LIMIT)
    async with serve(small_limit_app) as client:
        response = await client.post(
            POSTS,
            content=chunks(body) if chunked else body,
            headers={**NOT_A_TOKEN, "Content-Type": "application/json"},
        )

    # Read and parsed: the route went on to authenticate.
    assert_problem(response, 401, "invalid_token")


@pytest.mark.parametrize("chunked", [True, False])
async def test_a_body_one_byte_over_the_limit_is_refused(
    small_limit_app: FastAPI, serve: Serve, chunked: bool
) -> None:
    body = json_of_size(LIMIT + 1)
    async with serve(small_limit_app) as client:
        response = await client.post(
            POSTS,
            content=chunks(body) if chunked else body,
            headers={**NOT_A_TOKEN, "Content-Type": "application/json"},
        )

    assert_too_large(response, LIMIT)


def limited(app: ASGIApp) -> BodyLimitMiddleware:
    return BodyLimitMiddleware(app, max_body_bytes=LIMIT, surfaces=Surfaces(API_V1_SURFACE))


async def test_an_app_that_reads_on_after_the_limit_is_refused_again_and_answered_413() -> None:
    refusals = 0

    async def stubborn(scope: Scope, receive: Receive, send: Send) -> None:
        nonlocal refusals
        for _ in range(3):
            try:
                await receive()
            except BodyTooLarge:
                refusals += 1
        await PlainTextResponse("read it all")(scope, receive, send)

    transport = httpx.ASGITransport(app=limited(stubborn))
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        response = await client.post(POSTS, content=chunks(b"x" * (LIMIT + 1), size=LIMIT + 1))

    assert refusals == 3
    assert response.status_code == 413
    assert response.json()["code"] == "payload_too_large"
    assert response.text != "read it all"


async def test_an_answer_already_begun_is_not_replaced_but_ended() -> None:
    async def streaming(scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        while (await receive()).get("more_body"):
            await send({"type": "http.response.body", "body": b".", "more_body": True})

    transport = httpx.ASGITransport(app=limited(streaming))
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        with pytest.raises(BodyTooLarge):
            await client.post(POSTS, content=chunks(b"x" * (LIMIT + 1)))
