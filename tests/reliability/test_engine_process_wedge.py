"""A wedged engine process (alive, owing work, making no progress) is killed and restarted
(engine/process/wedge.py): its running requests end with an explicit INFERENCE_ERROR, the
next request succeeds, /status counts it. An idle engine, even a stopped one, is never
declared wedged, and a long prompt read with the default bound is not either.

The hang comes from the testing-only fault injection (`[[fault:hang@N]]`: the decode step
sleeps forever) or from this test stopping the engine process (SIGSTOP, by its pid)."""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest

from tests.e2e.conftest import Server, served
from tests.reliability.probes import greedy, sse_events, wait_idle
from tests.reliability.test_engine_process import engine_children, ready_again

pytestmark = pytest.mark.e2e

WEDGED_S = 4.0
# Detection takes WEDGED_S plus up to a second of polling; the margin is for a busy machine.
MARGIN_S = 30.0
PROBE = greedy("The capital of France is")


@pytest.fixture(scope="module")
def srv(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    with served(
        tmp_path_factory.mktemp("engine-wedge"),
        BROWSER_LLM_PARALLEL="2",
        BROWSER_LLM_MAX_QUEUE="2",
        BROWSER_LLM_CONTEXT_SIZE="1024",
        BROWSER_LLM_FAULT_INJECT="true",
        BROWSER_LLM_ENGINE_WEDGED_S=str(WEDGED_S),
    ) as server:
        assert server.status()["status"] == "ready", server.log.read_text()
        yield server


@pytest.fixture
def api(srv: Server) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=srv.base_url, timeout=120) as client:
        yield client


def _stream(base_url: str, body: dict[str, Any], first: threading.Event | None) -> dict[str, Any]:
    """The stream's events and how long it ran after its first event."""
    with (
        httpx.Client(base_url=base_url, timeout=180) as client,
        client.stream("POST", "/generate", json={**body, "stream": True}) as resp,
    ):
        assert resp.status_code == 200
        events = sse_events(resp)
        out = [next(events)]
        if first is not None:
            first.set()
        began = time.monotonic()
        out += list(events)
    return {"events": out, "after_first_s": time.monotonic() - began}


def _assert_wedge_error(events: list[dict[str, Any]]) -> None:
    kinds = [e["type"] for e in events]
    assert kinds[-1] == "error" and "done" not in kinds, kinds
    data = events[-1]["data"]
    assert data["code"] == "INFERENCE_ERROR", data
    assert "wedged" in data["error"], data
    assert data["details"]["reason"] == "engine_wedged", data


def test_hang_in_decode_with_two_streams(srv: Server, api: httpx.Client) -> None:
    before = wait_idle(srv)
    bystander = {**greedy("Count slowly", 600), "ignore_eos": True}
    hanging = {**greedy("Count [[fault:hang@2]]", 600), "ignore_eos": True}
    first = threading.Event()
    with ThreadPoolExecutor(2) as pool:
        running = pool.submit(_stream, srv.base_url, bystander, first)
        assert first.wait(60)  # the bystander decodes: both are in the step that hangs
        stuck = pool.submit(_stream, srv.base_url, hanging, None)
        results = [running.result(timeout=180), stuck.result(timeout=180)]
    for result in results:
        _assert_wedge_error(result["events"])
    # From its first event (prefill, two tokens, then the hang) to the error event.
    assert results[1]["after_first_s"] < WEDGED_S + MARGIN_S, results[1]["after_first_s"]
    after = ready_again(srv, before["engine"]["restarts"] + 1)
    process = after["engine"]["process"]
    assert process["wedged_restarts"] == before["engine"]["process"]["wedged_restarts"] + 1
    assert process["last_exit"].startswith("wedged")
    metrics = httpx.get(srv.base_url.removesuffix("/api/v1") + "/metrics", timeout=30).text
    wedged = float(process["wedged_restarts"])
    assert f"browser_llm_engine_wedged_restarts_total {wedged}" in metrics
    # Killed by the server for a wedge: not counted as the OOM killer's SIGKILL.
    assert after["health"]["memory_errors"] == before["health"]["memory_errors"]
    resp = api.post("/generate", json=PROBE)
    assert resp.status_code == 200, resp.text
    logs = api.get("/debug/logs", params={"level": "error", "limit": 1000}).json()
    assert any("is wedged" in r["message"] for r in logs["data"]["logs"])


def test_stopped_engine_with_work_pending(srv: Server, api: httpx.Client) -> None:
    before = wait_idle(srv)
    (child,) = engine_children(srv)
    first = threading.Event()
    body = {**greedy("Count slowly", 600), "ignore_eos": True}
    with ThreadPoolExecutor(1) as pool:
        stream = pool.submit(_stream, srv.base_url, body, first)
        assert first.wait(60)
        os.kill(child.pid, signal.SIGSTOP)  # the engine process this test's server started
        result = stream.result(timeout=180)
    _assert_wedge_error(result["events"])
    assert result["after_first_s"] < WEDGED_S + MARGIN_S
    after = ready_again(srv, before["engine"]["restarts"] + 1)
    assert after["engine"]["process"]["pid"] != child.pid
    assert not child.is_running()  # killed, not left stopped
    assert api.post("/generate", json=PROBE).status_code == 200


def test_idle_engine_is_never_wedged(srv: Server, api: httpx.Client) -> None:
    """Nothing owed: quiet is fine, even stopped (it answers when work comes, or dies then)."""
    before = wait_idle(srv)
    (child,) = engine_children(srv)
    time.sleep(2 * WEDGED_S)
    os.kill(child.pid, signal.SIGSTOP)
    try:
        time.sleep(2 * WEDGED_S)
        status = srv.status()
    finally:
        os.kill(child.pid, signal.SIGCONT)
    assert status["engine"]["restarts"] == before["engine"]["restarts"]
    assert status["engine"]["process"]["pid"] == child.pid
    assert api.post("/generate", json=PROBE).status_code == 200
    assert srv.status()["engine"]["restarts"] == before["engine"]["restarts"]


def test_long_prompt_with_the_default_bound(rel_server: Server) -> None:
    """The reliability suite's server keeps the default bound (60 s): a prompt that fills
    most of the 1024-token context, read with a stream decoding beside it, is not a wedge."""
    before = wait_idle(rel_server)
    long_prompt = "The quick brown fox jumps over the lazy dog. " * 85  # ~850 tokens
    other_prompt = "A lazy dog sleeps under the quick brown fox. " * 85
    with (
        httpx.Client(base_url=rel_server.base_url, timeout=180) as client,
        ThreadPoolExecutor(2) as pool,
    ):
        a = pool.submit(client.post, "/generate", json=greedy(long_prompt, 16))
        b = pool.submit(client.post, "/generate", json=greedy(other_prompt, 16))
        for future in (a, b):
            assert future.result().status_code == 200, future.result().text
    after = wait_idle(rel_server)
    assert after["engine"]["restarts"] == before["engine"]["restarts"]
    assert after["engine"]["process"]["wedged_restarts"] == 0
