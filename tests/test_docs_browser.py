"""The API docs in a real browser with no internet: a headless Chromium that reaches only
127.0.0.1 opens /docs and /redoc on a running Quill, sees every operation listed, and signs in
through Swagger UI's "Authorize" (the OAuth2 password flow against /api/v1/auth/token) to call
GET /api/v1/users/me.

tests/core/test_docs.py checks the pages' HTML; this checks that they work.
"""

import json
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest

from tests.cdp import Page, offline_chromium
from tests.quill_process import QuillProcess, running_quill

USERNAME = "ann"
PASSWORD = "a long password"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[QuillProcess]:
    with running_quill(tmp_path_factory.mktemp("docs-server"), {}) as running:
        yield running


@pytest.fixture
def page(tmp_path: Path) -> Iterator[Page]:
    with offline_chromium(tmp_path / "chromium-profile") as browser_page:
        yield browser_page


def documented_operations(server: QuillProcess) -> set[tuple[str, str]]:
    paths = httpx.get(f"{server.url}/openapi.json", timeout=10).json()["paths"]
    return {(method.upper(), path) for path, item in paths.items() for method in item}


# ReDoc 2 always ends its menu with "API docs by Redocly" and that logo, from its CDN; offline,
# the image is left out (its onError) and nothing else is missing.
REDOC_BRANDING = "https://cdn.redoc.ly/redoc/logo-mini.svg"


def requested_elsewhere(page: Page, server: QuillProcess) -> set[str]:
    """What the page asked of any other server than Quill (none answers: the network is closed)."""
    origin = urlsplit(server.url)
    return {
        url
        for url in page.requested_urls()
        if urlsplit(url).scheme not in {"data", "blob"}
        and (urlsplit(url).scheme, urlsplit(url).netloc) != (origin.scheme, origin.netloc)
    }


LISTED_OPERATIONS = """
[...document.querySelectorAll('.opblock')].map(block => [
    block.querySelector('.opblock-summary-method').textContent,
    block.querySelector('.opblock-summary-path').dataset.path,
])
"""


def test_swagger_ui_lists_every_operation_offline(page: Page, server: QuillProcess) -> None:
    expected = documented_operations(server)

    page.open(f"{server.url}/docs")
    page.wait_for(
        f"document.querySelectorAll('.opblock').length === {len(expected)}",
        "every operation listed",
    )
    listed = {(method, path) for method, path in page.evaluate(LISTED_OPERATIONS)}

    assert listed == expected
    assert requested_elsewhere(page, server) == set()


def test_redoc_lists_every_operation_offline(page: Page, server: QuillProcess) -> None:
    expected = documented_operations(server)

    page.open(f"{server.url}/redoc")
    count = page.wait_for(
        "document.querySelectorAll('[data-section-id^=\"operation/\"]').length",
        "operations listed",
    )

    assert count == len(expected)
    assert requested_elsewhere(page, server) <= {REDOC_BRANDING}


def operation(method: str, path: str) -> str:
    """The selector of one operation's block in Swagger UI."""
    return (
        f".opblock-{method.lower()}:has(> .opblock-summary "
        f".opblock-summary-path[data-path={json.dumps(path)}])"
    )


def test_swagger_ui_signs_in_with_the_password_flow_and_calls_an_operation(
    page: Page, server: QuillProcess
) -> None:
    signup = httpx.post(
        f"{server.url}/api/v1/users/",
        json={"username": USERNAME, "email": "ann@example.com", "password": PASSWORD},
        timeout=10,
    )
    assert signup.status_code == 201, signup.text

    page.open(f"{server.url}/docs")
    page.click(".auth-wrapper .authorize")
    page.type_into("#oauth_username", USERNAME)
    page.type_into("#oauth_password", PASSWORD)
    page.click(".auth-btn-wrapper .authorize")
    # Signed in: the dialog offers to log out instead.
    page.wait_for(
        "[...document.querySelectorAll('.auth-btn-wrapper button')]"
        ".some(button => button.textContent.trim() === 'Logout')",
        "Swagger UI signed in",
    )
    page.click(".auth-btn-wrapper .btn-done")

    me = operation("GET", "/api/v1/users/me")
    page.click(f"{me} .opblock-summary-control")
    page.click(f"{me} .try-out__btn")
    page.click(f"{me} .execute")
    answer = f"{me} .live-responses-table tr.response"
    status = page.wait_for_text(f"{answer} .response-col_status")
    body = page.wait_for_text(f"{answer} .highlight-code pre")

    assert status.strip() == "200"
    assert json.loads(body)["username"] == USERNAME
    assert requested_elsewhere(page, server) == set()
