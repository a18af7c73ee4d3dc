"""The one check of an error answer, shared by every test of the HTTP contract."""

from http import HTTPStatus
from typing import Any

import httpx

PROBLEM_FIELDS = {"type", "title", "status", "detail", "code", "request_id"}


def assert_problem(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    """The response is an RFC 9457 problem of this status and code; its body."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body: dict[str, Any] = response.json()
    assert body.keys() >= PROBLEM_FIELDS
    assert body["status"] == status
    assert body["code"] == code
    assert body["type"] == f"urn:quill:problem:{code}"
    assert body["title"] == HTTPStatus(status).phrase
    assert isinstance(body["detail"], str)
    assert body["detail"]
    assert body["request_id"] == response.headers["X-Request-ID"]
    return body
