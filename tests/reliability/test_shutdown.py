"""SIGTERM and SIGINT under load: new requests get 503 while running ones finish (or are
cut cleanly when the grace period ends), and the process exits with code 0."""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from websockets.sync.client import connect

from tests.e2e.conftest import Server, start_server, stop_server
from tests.reliability.probes import greedy, sse_events

pytestmark = pytest.mark.e2e


def _stream_in_thread(
    server: Server, body: dict[str, Any], out: list[dict[str, Any]]
) -> tuple[threading.Thread, threading.Event]:
    """Streams in a thread; the event is set once the first token has arrived."""
    streaming = threading.Event()

    def run() -> None:
        with (
            httpx.Client(base_url=server.base_url, timeout=120) as client,
            client.stream("POST", "/generate", json={**body, "stream": True}) as resp,
        ):
            assert resp.status_code == 200
            for event in sse_events(resp):
                out.append(event)
                streaming.set()

    thread = threading.Thread(target=run)
    thread.start()
    return thread, streaming


def _wait_draining(server: Server) -> None:
    deadline = time.monotonic() + 10
    while not server.status()["engine"]["draining"]:
        assert time.monotonic() < deadline, "the server did not start draining"
        time.sleep(0.02)


def _assert_refused_while_draining(server: Server) -> None:
    resp = httpx.post(f"{server.base_url}/generate", json=greedy("Hi"), timeout=10)
    assert resp.status_code == 503
    body = resp.json()
    assert body["error"]["code"] == "OVERLOADED"
    assert body["error"]["details"]["reason"] == "shutting_down"
    assert int(resp.headers["Retry-After"]) >= 1


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_running_streams_finish_and_the_exit_code_is_0(tmp_path: Path, sig: int) -> None:
    server = start_server(tmp_path, BROWSER_LLM_SHUTDOWN_GRACE_S="600")
    try:
        outputs: list[list[dict[str, Any]]] = [[], []]
        body = {**greedy("Count slowly", 40), "ignore_eos": True}
        started = [_stream_in_thread(server, body, out) for out in outputs]
        for _, streaming in started:
            assert streaming.wait(timeout=120)
        os.killpg(server.process.pid, sig)
        _wait_draining(server)
        _assert_refused_while_draining(server)
        for thread, _ in started:
            thread.join(timeout=120)
        assert server.process.wait(timeout=60) == 0, server.log.read_text()
    finally:
        stop_server(server)
    for events in outputs:
        assert events[-1]["type"] == "done", events[-3:]
        assert events[-1]["data"]["completion"]["tokens"] == 40


def test_grace_period_over_cuts_streams_cleanly(tmp_path: Path) -> None:
    server = start_server(tmp_path, BROWSER_LLM_SHUTDOWN_GRACE_S="1")
    try:
        sse: list[dict[str, Any]] = []
        body = {"prompt": "Tell a long story", "max_tokens": 4000, "ignore_eos": True}
        thread, streaming = _stream_in_thread(server, body, sse)
        ws_messages: list[dict[str, Any]] = []
        with connect(server.base_url.replace("http://", "ws://") + "/ws") as ws:
            ws.send(json.dumps({"type": "generate", "id": "w", "payload": body}))
            ws_messages.append(json.loads(ws.recv(timeout=120)))
            assert ws_messages[0]["type"] == "token" and streaming.wait(timeout=120)
            os.killpg(server.process.pid, signal.SIGTERM)
            _wait_draining(server)
            _assert_refused_while_draining(server)
            try:
                while True:
                    message = json.loads(ws.recv(timeout=60))
                    ws_messages.append(message)
                    if message["type"] in ("done", "error"):
                        break
            except Exception:  # the server may close the socket right after
                pass
        thread.join(timeout=60)
        assert server.process.wait(timeout=60) == 0, server.log.read_text()
    finally:
        stop_server(server)
    assert sse[-1]["type"] == "error" and sse[-1]["data"]["code"] == "CANCELLED", sse[-2:]
    assert "shutting down" in sse[-1]["data"]["error"]
    assert ws_messages[-1]["type"] == "error", ws_messages[-2:]
    assert ws_messages[-1]["data"]["code"] == "CANCELLED"
