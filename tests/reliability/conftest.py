"""Real server processes for the reliability suite (tests/e2e/conftest.py starts them)."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from tests.e2e.conftest import Server, served

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="session")
def rel_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """Two sequence slots and a two-request queue (admission limit 4), a 1024-token
    context, and the testing-only fault injection switched on. The default thread
    policy: the engine drops to one llama.cpp thread by itself while the machine is
    busy (engine/native/cpu/governor.py), so the suite no longer forces one."""
    with served(
        tmp_path_factory.mktemp("reliability"),
        BROWSER_LLM_PARALLEL="2",
        BROWSER_LLM_MAX_QUEUE="2",
        BROWSER_LLM_CONTEXT_SIZE="1024",
        BROWSER_LLM_FAULT_INJECT="true",
    ) as srv:
        assert srv.status()["status"] == "ready", srv.log.read_text()
        yield srv


@pytest.fixture
def rel_api(rel_server: Server) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=rel_server.base_url, timeout=120) as client:
        yield client
