"""Browser engine servers: BROWSER_LLM_ENGINE=browser, tabs attach over /api/v1/engine/attach."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.e2e.conftest import Server, served

MODEL = "smollm2-135m-instruct-q4"


def attach_url(server: Server) -> str:
    return server.base_url.replace("http://", "ws://") + "/engine/attach"


def wait_status(server: Server, check: Any, timeout: float = 120) -> dict[str, Any]:
    """Polls /status until check(data) holds; returns that status."""
    deadline = time.monotonic() + timeout
    while True:
        data = server.status()
        if check(data):
            return data
        if time.monotonic() > deadline:
            raise AssertionError(f"status never matched: {data}")
        time.sleep(0.1)


@pytest.fixture(scope="module")
def relay_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """A browser-engine server that fake tabs attach to (the native engine stays empty)."""
    with served(
        tmp_path_factory.mktemp("relay"),
        BROWSER_LLM_ENGINE="browser",
        BROWSER_LLM_CONTEXT_SIZE="1024",
        # Fake tabs answer pings from a thread; a silent one is dropped within seconds.
        BROWSER_LLM_BROWSER_TAB_TIMEOUT_S="3",
    ) as srv:
        yield srv


@pytest.fixture
def relay_api(relay_server: Server) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=relay_server.base_url, timeout=60) as client:
        yield client
