import base64
import hashlib
import re

import httpx
import pytest
from fastapi import FastAPI

from app.core.config import Settings
from app.core.security_headers import API_CONTENT_SECURITY_POLICY
from app.main import create_app
from tests.conftest import Serve

SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
}


@pytest.fixture
def crashing_app(settings: Settings) -> FastAPI:
    app = create_app(settings)

    @app.get("/test/crash")
    async def crash() -> None:
        raise RuntimeError("the route failed")

    return app


def directives(policy: str) -> dict[str, list[str]]:
    parsed = [directive.split() for directive in policy.split(";")]
    return {name: sources for name, *sources in parsed}


def assert_security_headers(response: httpx.Response) -> None:
    for name, value in SECURITY_HEADERS.items():
        assert response.headers.get(name) == value, name
    assert "Strict-Transport-Security" not in response.headers


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [
        ("GET", "/health", 200),
        ("GET", "/api/v1/posts/", 200),
        ("GET", "/openapi.json", 200),
        ("GET", "/docs-assets/swagger-ui.css", 200),
        ("GET", "/no-such-thing", 404),
        ("GET", "/api/v1/posts/999", 404),
        ("DELETE", "/health", 405),
        ("GET", "/api/v1/users/me", 401),
        ("GET", "/api/v1/posts/07", 422),
        ("GET", "/test/crash", 500),
    ],
)
async def test_every_answer_carries_the_security_headers_and_a_policy_that_allows_nothing(
    crashing_app: FastAPI, serve: Serve, method: str, path: str, status: int
) -> None:
    async with serve(crashing_app) as client:
        response = await client.request(method, path)

    assert response.status_code == status
    assert_security_headers(response)
    assert response.headers["Content-Security-Policy"] == API_CONTENT_SECURITY_POLICY
    policy = directives(response.headers["Content-Security-Policy"])
    assert policy["default-src"] == ["'none'"]
    assert policy["frame-ancestors"] == ["'none'"]


def inline_script_hashes(html: str) -> set[str]:
    scripts = re.findall(r"<script>(.*?)</script>", html, re.DOTALL)
    digests = (hashlib.sha256(script.encode()).digest() for script in scripts)
    return {f"'sha256-{base64.b64encode(digest).decode()}'" for digest in digests}


async def test_swagger_ui_may_run_its_own_inline_script_and_nothing_else_inline(
    client: httpx.AsyncClient,
) -> None:
    response = await client.get("/docs")

    assert response.status_code == 200
    assert_security_headers(response)
    policy = directives(response.headers["Content-Security-Policy"])
    hashes = inline_script_hashes(response.text)
    assert len(hashes) == 1
    assert policy["script-src"] == ["'self'", *hashes]
    assert policy["style-src"] == ["'self'"]
    assert policy["default-src"] == ["'none'"]
    assert policy["connect-src"] == ["'self'"]
    assert policy["frame-ancestors"] == ["'none'"]
    assert "'unsafe-inline'" not in response.headers["Content-Security-Policy"]
    assert "'unsafe-eval'" not in response.headers["Content-Security-Policy"]


async def test_redoc_runs_only_quills_scripts_and_may_style_inline(
    client: httpx.AsyncClient,
) -> None:
    response = await client.get("/redoc")

    assert response.status_code == 200
    assert_security_headers(response)
    policy = directives(response.headers["Content-Security-Policy"])
    assert inline_script_hashes(response.text) == set()
    assert policy["script-src"] == ["'self'"]
    assert policy["style-src"] == ["'self'", "'unsafe-inline'"]
    assert policy["worker-src"] == ["blob:"]
    assert policy["default-src"] == ["'none'"]
    assert policy["frame-ancestors"] == ["'none'"]


@pytest.mark.parametrize("path", ["/health", "/no-such-thing", "/docs"])
async def test_strict_transport_security_is_sent_over_https_only(app: FastAPI, path: str) -> None:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="https://test") as https:
        secure = await https.get(path)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
        plain = await http.get(path)

    assert secure.headers["Strict-Transport-Security"] == "max-age=31536000"
    assert "Strict-Transport-Security" not in plain.headers
    assert secure.headers["X-Frame-Options"] == plain.headers["X-Frame-Options"] == "DENY"
