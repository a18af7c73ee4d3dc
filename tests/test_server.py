"""The service as people run it: `fastapi run` with several worker processes on the embedded
SQLite default, started from nothing (no data folder, no secret, no schema)."""

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

PROJECT_ROOT = Path(__file__).resolve().parents[1]
WORKERS = 2


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    workdir = tmp_path_factory.mktemp("server")
    port = free_port()
    environment = {
        key: value
        for key, value in os.environ.items()
        if key not in {"SECRET_KEY", "DATA_DIR", "DATABASE_URL", "ENVIRONMENT"}
    }
    environment["DATA_DIR"] = str(workdir / "data")
    environment["PYTHONPATH"] = str(PROJECT_ROOT)
    fastapi_cli = Path(sys.executable).parent / "fastapi"
    # A file, not a pipe: nothing reads a pipe while tests run, and a full one stalls the server.
    output_path = workdir / "server.log"
    output = output_path.open("wb")
    process = subprocess.Popen(  # noqa: S603 - our own CLI with fixed arguments
        [
            str(fastapi_cli),
            "run",
            str(PROJECT_ROOT / "app" / "main.py"),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--workers",
            str(WORKERS),
        ],
        cwd=workdir,
        env=environment,
        stdout=output,
        stderr=subprocess.STDOUT,
    )
    base_url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if process.poll() is not None:
                pytest.fail(f"the server exited at start-up:\n{output_path.read_text()}")
            try:
                if httpx.get(f"{base_url}/health", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.2)
        else:
            pytest.fail("the server did not answer /health within 60 seconds")
        yield base_url
    finally:
        process.terminate()
        process.wait(timeout=30)
        output.close()


def test_workers_started_from_nothing_share_one_database_and_one_secret(server: str) -> None:
    with httpx.Client(base_url=server, timeout=10) as client:
        created = client.post(
            "/api/v1/users/",
            json={"username": "ann", "email": "ann@example.com", "password": "a long password"},
        )
        assert created.status_code == 201, created.text

        # New connections, so the requests spread over the worker processes: each one must
        # accept tokens that any other signed.
        tokens = []
        for _ in range(4 * WORKERS):
            with httpx.Client(base_url=server, timeout=10) as fresh:
                response = fresh.post(
                    "/api/v1/auth/token", data={"username": "ann", "password": "a long password"}
                )
                assert response.status_code == 200, response.text
                tokens.append(response.json()["access_token"])
        for token in tokens:
            with httpx.Client(base_url=server, timeout=10) as fresh:
                me = fresh.get("/api/v1/users/me", headers={"Authorization": f"Bearer {token}"})
                assert me.status_code == 200, me.text
                assert me.json()["username"] == "ann"

        docs = client.get("/docs")
        assert docs.status_code == 200
        assert "/docs-assets/swagger-ui-bundle.js" in docs.text
