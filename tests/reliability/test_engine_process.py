"""llama.cpp runs in a child process: killing it (SIGKILL, SIGSEGV, SIGILL) during prefill,
during decode with four streams running, or while idle never takes the server down.
Running clients get an INFERENCE_ERROR naming the signal, queued ones run again on the
restarted engine, and nothing leaks. Signals come from the testing-only fault injection
(BROWSER_LLM_FAULT_INJECT) inside the engine process, or from this test by process id."""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest

from tests.e2e.conftest import Server, served, start_server, stop_server
from tests.reliability.probes import greedy, sample, sse_events, wait_idle

pytestmark = pytest.mark.e2e

PROBE = greedy("The capital of France is")
SIGNALS = ["sigkill", "sigsegv", "sigill"]


@pytest.fixture(scope="module")
def srv(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    with served(
        tmp_path_factory.mktemp("engine-process"),
        BROWSER_LLM_PARALLEL="4",
        BROWSER_LLM_MAX_QUEUE="4",
        BROWSER_LLM_CONTEXT_SIZE="1024",
        BROWSER_LLM_FAULT_INJECT="true",
    ) as server:
        assert server.status()["status"] == "ready", server.log.read_text()
        yield server


@pytest.fixture
def api(srv: Server) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=srv.base_url, timeout=120) as client:
        yield client


@pytest.fixture(scope="module")
def reference(srv: Server) -> str:
    text: str = httpx.post(f"{srv.base_url}/generate", json=PROBE, timeout=120).json()["data"][
        "text"
    ]
    return text


def engine_children(server: Server) -> list[psutil.Process]:
    return psutil.Process(server.process.pid).children()


def ready_again(server: Server, restarts: int, timeout: float = 60) -> dict[str, Any]:
    """/status once the engine process has restarted `restarts` times and serves again."""
    deadline = time.monotonic() + timeout
    status: dict[str, Any] = {}
    while time.monotonic() < deadline:
        status = server.status()
        if status["engine"]["restarts"] >= restarts and status["status"] == "ready":
            return wait_idle(server)
        time.sleep(0.1)
    raise AssertionError(f"engine did not come back: {status}")


def assert_healthy(server: Server, api: httpx.Client, reference: str) -> None:
    resp = api.post("/generate", json=PROBE)
    assert resp.status_code == 200, resp.text
    # Same build, same prompt, greedy: the restarted engine answers as the first one did.
    assert resp.json()["data"]["text"] == reference
    (child,) = engine_children(server)  # exactly one engine process, no orphans
    assert child.is_running()


def test_server_process_never_maps_llama_cpp(srv: Server) -> None:
    def maps(pid: int) -> str:
        return Path(f"/proc/{pid}/maps").read_text()

    assert "libllama" not in maps(srv.process.pid) and "libggml" not in maps(srv.process.pid)
    (child,) = engine_children(srv)
    assert "libllama" in maps(child.pid)
    assert srv.status()["engine"]["process"]["pid"] == child.pid


@pytest.mark.parametrize("sig", SIGNALS)
def test_engine_killed_during_prefill(
    srv: Server, api: httpx.Client, reference: str, sig: str
) -> None:
    before = wait_idle(srv)
    resp = api.post("/generate", json={"prompt": f"Hello [[fault:{sig}@0]]", "max_tokens": 8})
    assert resp.status_code == 500
    error = resp.json()["error"]
    assert error["code"] == "INFERENCE_ERROR"
    assert error["details"]["signal"] == sig.upper()
    assert "engine process died" in error["message"]
    after = ready_again(srv, before["engine"]["restarts"] + 1)
    assert after["engine"]["process"]["last_exit"].startswith(sig.upper())
    assert after["health"]["stability_score"] < 1
    if sig != "sigkill":  # the dying process's own report (faulthandler) is in the logs
        logs = api.get("/debug/logs", params={"level": "warn", "limit": 1000}).json()
        messages = [r["message"] for r in logs["data"]["logs"]]
        assert any("Fatal Python error" in m for m in messages), messages[-20:]
    assert_healthy(srv, api, reference)


def _stream(base_url: str, body: dict[str, Any], first: threading.Barrier) -> list[dict[str, Any]]:
    with (
        httpx.Client(base_url=base_url, timeout=120) as client,
        client.stream("POST", "/generate", json={**body, "stream": True}) as resp,
    ):
        assert resp.status_code == 200
        events = sse_events(resp)
        out = [next(events)]
        first.wait(timeout=60)  # all four are decoding before the crash is due
        out += list(events)
    return out


@pytest.mark.parametrize("sig", SIGNALS)
def test_engine_killed_with_four_streams_running(
    srv: Server, api: httpx.Client, reference: str, sig: str
) -> None:
    before = wait_idle(srv)
    fds, threads = sample(srv.process.pid).fds, sample(srv.process.pid).threads
    bystander = {**greedy("Count slowly", 400), "ignore_eos": True}
    crashing = {**greedy(f"Count [[fault:{sig}@24]]", 400), "ignore_eos": True}
    first = threading.Barrier(4)
    with ThreadPoolExecutor(4) as pool:
        futures = [pool.submit(_stream, srv.base_url, bystander, first) for _ in range(3)]
        futures.append(pool.submit(_stream, srv.base_url, crashing, first))
        streams = [f.result(timeout=180) for f in futures]
    for events in streams:
        kinds = [e["type"] for e in events]
        assert kinds[-1] == "error" and "done" not in kinds, kinds
        assert events[-1]["data"]["code"] == "INFERENCE_ERROR"
        assert sig.upper() in events[-1]["data"]["error"]
    after = ready_again(srv, before["engine"]["restarts"] + 1)
    assert after["engine"]["running"] == 0 and after["engine"]["queued"] == 0
    assert_healthy(srv, api, reference)
    # Nothing leaks in the server process: descriptors and threads are back where they were
    # (a small margin: the HTTP connection pool and the stderr reader come and go).
    now = sample(srv.process.pid)
    assert now.fds <= fds + 2 and now.threads <= threads + 1, (now, fds, threads)


def test_engine_killed_while_idle(srv: Server, api: httpx.Client, reference: str) -> None:
    before = wait_idle(srv)
    (child,) = engine_children(srv)
    os.kill(child.pid, signal.SIGKILL)  # the process this test's server started
    after = ready_again(srv, before["engine"]["restarts"] + 1)
    assert after["engine"]["process"]["pid"] != child.pid
    assert after["engine"]["process"]["last_exit"].startswith("SIGKILL")
    # SIGKILL is the OOM killer's signal: counted as a memory error.
    assert after["health"]["memory_errors"] == before["health"]["memory_errors"] + 1
    metrics = httpx.get(srv.base_url.replace("/api/v1", "/metrics")).text
    assert f"browser_llm_engine_restarts_total {float(after['engine']['restarts'])}" in metrics
    assert_healthy(srv, api, reference)


def test_queued_request_runs_again_after_the_crash(
    srv: Server, api: httpx.Client, reference: str
) -> None:
    """Four slots busy, a fifth request waiting: the crash fails the four running ones;
    the waiting one was never started, so it runs on the restarted engine and succeeds."""
    before = wait_idle(srv)
    long = {**greedy("Count slowly", 400), "ignore_eos": True}
    crashing = {**greedy("Count [[fault:sigsegv@40]]", 400), "ignore_eos": True}
    first = threading.Barrier(5)  # four streams + this thread

    with ThreadPoolExecutor(5) as pool:
        streams = [pool.submit(_stream, srv.base_url, long, first) for _ in range(3)]
        streams.append(pool.submit(_stream, srv.base_url, crashing, first))
        while srv.status()["engine"]["running"] < 4:
            time.sleep(0.02)
        queued = pool.submit(api.post, "/generate", json=PROBE)
        deadline = time.monotonic() + 30
        while srv.status()["engine"]["queued"] < 1 and time.monotonic() < deadline:
            time.sleep(0.02)
        first.wait(timeout=60)
        for stream in streams:
            assert stream.result(timeout=180)[-1]["data"]["code"] == "INFERENCE_ERROR"
        resp = queued.result(timeout=180)
    assert resp.status_code == 200, resp.text
    assert resp.json()["data"]["text"] == reference
    ready_again(srv, before["engine"]["restarts"] + 1)


def test_three_deaths_before_a_token_mark_the_model_failed(
    srv: Server, api: httpx.Client, reference: str
) -> None:
    """A model whose engine dies before its first token three times in a row is marked
    failed (no endless restarts); loading it again explicitly starts over."""
    before = wait_idle(srv)
    model_id = before["model"]["id"]
    for i in range(3):
        resp = api.post("/generate", json={"prompt": "Hi [[fault:sigsegv@0]]", "max_tokens": 4})
        assert resp.status_code == 500, resp.text
        if i < 2:
            ready_again(srv, before["engine"]["restarts"] + i + 1)
    deadline = time.monotonic() + 30
    while srv.status()["status"] != "error" and time.monotonic() < deadline:
        time.sleep(0.1)
    status = srv.status()
    assert status["status"] == "error" and status["model"] is None
    process = status["engine"]["process"]
    assert process["state"] == "failed" and "3 times in a row" in process["failure"]
    refused = api.post("/generate", json=PROBE)
    assert refused.status_code == 503, refused.text
    assert refused.json()["error"]["code"] == "MODEL_NOT_LOADED"
    assert "marked failed" in refused.json()["error"]["message"]
    load = api.post(f"/models/{model_id}/load")
    assert load.status_code in (200, 202), load.text
    deadline = time.monotonic() + 60
    while srv.status()["status"] != "ready" and time.monotonic() < deadline:
        time.sleep(0.1)
    assert_healthy(srv, api, reference)


@pytest.mark.parametrize("how", [signal.SIGTERM, signal.SIGKILL])
def test_no_engine_process_outlives_the_server(tmp_path: Path, how: signal.Signals) -> None:
    """SIGTERM drains and stops the engine process; SIGKILL of the server leaves the engine
    process with a closed socket, and it exits by itself."""
    server = start_server(tmp_path, BROWSER_LLM_CONTEXT_SIZE="1024")
    try:
        (child,) = engine_children(server)
        os.kill(server.process.pid, how)
        server.process.wait(timeout=60)
        if how == signal.SIGTERM:
            assert server.process.returncode == 0
        deadline = time.monotonic() + 30
        while _alive(child) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not _alive(child), f"engine process {child.pid} outlived the server"
    finally:
        stop_server(server)


def _alive(process: psutil.Process) -> bool:
    """Running and not a zombie (an exited orphan waits for init to reap it)."""
    try:
        return process.is_running() and process.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False
