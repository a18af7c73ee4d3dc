"""A headless Chromium driven through its DevTools protocol: enough to open a page, wait for what
it renders, click, type, and see every request it made.

Chromium's own wire protocol over a websocket (the `websockets` package uvicorn brings), rather
than Playwright or Selenium: those download browsers or drivers of their own, and the tests
need Debian's chromium and a handful of commands.
"""

import contextlib
import itertools
import json
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from websockets.sync.client import ClientConnection, connect

WAIT_SECONDS = 30


class BrowserError(Exception):
    """The page threw, or the protocol refused a command."""


def chromium_program() -> str:
    """Debian's chromium; skipped where it is missing, and a failure under CI=true."""
    for name in ("chromium", "chromium-browser"):
        if program := shutil.which(name):
            return program
    if os.environ.get("CI") == "true":
        pytest.fail("chromium is not installed, and CI=true requires it")
    pytest.skip("chromium is not installed (apt install chromium)")


@contextlib.contextmanager
def offline_chromium(profile: Path) -> Iterator["Page"]:
    """A headless Chromium that reaches 127.0.0.1 and nothing else, on a page of its own.

    Every other host name fails to resolve, and every other address goes to a proxy that is not
    there, so a page that fetches anything from the internet (a CDN) fails to get it.
    """
    process = subprocess.Popen(  # noqa: S603 - a fixed program and arguments
        [
            chromium_program(),
            "--headless=new",
            "--no-sandbox",  # CI runs as root, where the sandbox cannot start
            "--disable-gpu",
            "--no-first-run",
            "--no-default-browser-check",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-extensions",
            "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
            "--proxy-server=http://127.0.0.1:9",
            "--remote-debugging-address=127.0.0.1",
            "--remote-debugging-port=0",
            f"--user-data-dir={profile}",
            "about:blank",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        # Its own process group: the browser's helpers end with it.
        start_new_session=True,
    )
    try:
        port = _debugging_port(profile, process)
        targets = httpx.get(f"http://127.0.0.1:{port}/json/list", timeout=10).json()
        [page_target] = [target for target in targets if target["type"] == "page"]
        with (
            connect(page_target["webSocketDebuggerUrl"], max_size=None) as connection,
            Page(connection) as page,
        ):
            yield page
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def _debugging_port(profile: Path, process: subprocess.Popen[bytes]) -> int:
    """The port Chromium chose (port 0), which it writes into its profile once it listens."""
    announced = profile / "DevToolsActivePort"
    deadline = time.monotonic() + WAIT_SECONDS
    while not (announced.exists() and announced.read_text().strip()):
        if process.poll() is not None:
            pytest.fail(f"chromium exited at start-up with status {process.returncode}")
        if time.monotonic() > deadline:
            pytest.fail(f"chromium did not open its debugging port within {WAIT_SECONDS} seconds")
        time.sleep(0.1)
    return int(announced.read_text().split()[0])


class Page:
    """One tab: commands in, their answers and the events (such as network requests) out."""

    def __init__(self, connection: ClientConnection) -> None:
        self.connection = connection
        self._ids = itertools.count(1)
        self.events: list[dict[str, Any]] = []

    def __enter__(self) -> "Page":
        self.send("Page.enable")
        self.send("Network.enable")
        self.send("Runtime.enable")
        return self

    def __exit__(self, *_exc: object) -> None:
        pass

    def send(self, method: str, **params: Any) -> dict[str, Any]:
        command_id = next(self._ids)
        self.connection.send(json.dumps({"id": command_id, "method": method, "params": params}))
        while True:
            message = json.loads(self.connection.recv(timeout=WAIT_SECONDS))
            if message.get("id") == command_id:
                if "error" in message:
                    raise BrowserError(f"{method}: {message['error']}")
                result: dict[str, Any] = message.get("result", {})
                return result
            self.events.append(message)

    def evaluate(self, expression: str) -> Any:
        """The value of a JavaScript expression in the page (awaited when it is a promise)."""
        answer = self.send(
            "Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True
        )
        if "exceptionDetails" in answer:
            raise BrowserError(f"{expression}: {answer['exceptionDetails']}")
        return answer["result"].get("value")

    def wait_for(self, expression: str, what: str) -> Any:
        """The first truthy value of `expression`, evaluated until the page renders it."""
        deadline = time.monotonic() + WAIT_SECONDS
        while not (value := self.evaluate(expression)):
            if time.monotonic() > deadline:
                pytest.fail(f"not within {WAIT_SECONDS} seconds: {what}")
            time.sleep(0.1)
        return value

    def open(self, url: str) -> None:
        self.send("Page.navigate", url=url)
        self.wait_for(
            f"location.href === {json.dumps(url)} && document.readyState === 'complete'",
            f"{url} loaded",
        )

    def click(self, selector: str) -> None:
        self._wait_for_element(selector)
        self.evaluate(f"document.querySelector({json.dumps(selector)}).click()")

    def type_into(self, selector: str, text: str) -> None:
        """Type as a user would: the page sees the input events its fields listen to."""
        self._wait_for_element(selector)
        self.evaluate(f"document.querySelector({json.dumps(selector)}).focus()")
        self.send("Input.insertText", text=text)

    def wait_for_text(self, selector: str) -> str:
        """The text of the element `selector` picks, once the page shows it."""
        text: str = self.wait_for(
            f"document.querySelector({json.dumps(selector)})?.textContent", f"{selector}"
        )
        return text

    def _wait_for_element(self, selector: str) -> None:
        self.wait_for(f"document.querySelector({json.dumps(selector)}) !== null", f"{selector}")

    def requested_urls(self) -> list[str]:
        """Every URL the page has requested so far."""
        self.evaluate("0")  # its answer comes after every event sent before it
        return [
            event["params"]["request"]["url"]
            for event in self.events
            if event.get("method") == "Network.requestWillBeSent"
        ]
