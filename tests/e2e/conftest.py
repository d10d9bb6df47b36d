"""A real Browser LLM server (real engine, real default model) for end-to-end tests."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

pytestmark = pytest.mark.e2e


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Server:
    def __init__(
        self, base_url: str, process: subprocess.Popen[bytes], log: Path, api_key: str = ""
    ) -> None:
        self.base_url = base_url
        self.process = process
        self.log = log
        self.headers = {"X-API-Key": api_key} if api_key else {}

    def status(self) -> dict:  # type: ignore[type-arg]
        resp = httpx.get(f"{self.base_url}/status", headers=self.headers, timeout=10)
        return resp.json()["data"]


def start_server(tmp: Path, **env: str) -> Server:
    port = _free_port()
    log = tmp / f"server-{port}.log"
    full_env = {
        **os.environ,
        "BROWSER_LLM_HOST": "127.0.0.1",
        "BROWSER_LLM_PORT": str(port),
        "BROWSER_LLM_MODELS_DIR": str(tmp / "models"),
        "BROWSER_LLM_DATA_DIR": str(tmp / "data"),
        # The suite sends far more than 60 generates a minute; limits have their own tests.
        "BROWSER_LLM_RATE_LIMIT_GENERATE": "100000",
        "BROWSER_LLM_RATE_LIMIT_STATUS": "100000",
        "BROWSER_LLM_RATE_LIMIT_OTHER": "100000",
        **env,
    }
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "browser_llm.cli", "serve"],
            env=full_env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group, stopped by id below
        )
    server = Server(
        f"http://127.0.0.1:{port}/api/v1", process, log, env.get("BROWSER_LLM_API_KEY", "")
    )
    deadline = time.monotonic() + 120
    try:
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise RuntimeError(f"server exited early:\n{log.read_text()}")
            try:
                if server.status()["status"] in ("ready", "idle", "error"):
                    return server
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise RuntimeError(f"server did not start:\n{log.read_text()}")
    except BaseException:
        stop_server(server)  # never leave a server behind, whatever went wrong
        raise


def stop_server(server: Server) -> None:
    if server.process.poll() is None:
        os.killpg(server.process.pid, signal.SIGTERM)
        try:
            server.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(server.process.pid, signal.SIGKILL)
            server.process.wait()


@contextlib.contextmanager
def served(tmp: Path, **env: str) -> Iterator[Server]:
    """A server started with `env` for the `with` block, stopped (by process group) after."""
    srv = start_server(tmp, **env)
    try:
        yield srv
    finally:
        stop_server(srv)


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    with served(tmp_path_factory.mktemp("server")) as srv:
        assert srv.status()["status"] == "ready", srv.log.read_text()
        yield srv


@pytest.fixture
def api(server: Server) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.base_url, timeout=120) as client:
        yield client


@pytest.fixture(scope="session")
def tiny_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """One sequence slot, a one-request queue, a 1024-token context and 64-token prompt
    chunks: limits come quickly and a long prompt takes many steps to read."""
    with served(
        tmp_path_factory.mktemp("tiny"),
        BROWSER_LLM_PARALLEL="1",
        BROWSER_LLM_MAX_QUEUE="1",
        BROWSER_LLM_CONTEXT_SIZE="1024",
        BROWSER_LLM_BATCH_SIZE="64",
    ) as srv:
        yield srv
