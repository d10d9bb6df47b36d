"""Clients that leave mid-stream (SSE and WebSocket), a hundred times each: generation
stops within a few tokens, the next request runs, and nothing leaks (sequences, KV
cells, queue places, threads, file descriptors)."""

from __future__ import annotations

import json
import socket
from typing import Any
from urllib.parse import urlsplit

import httpx
from websockets.sync.client import connect

from tests.e2e.conftest import Server
from tests.reliability.probes import greedy, sample, sse_events, wait_idle

ROUNDS = 100
LONG = {"prompt": "Tell a long story", "max_tokens": 1000, "ignore_eos": True}
TOKENS_BEFORE_LEAVING = 3
# A generation that kept going would produce up to 1000 tokens; one that stops within
# "about a token" produces a handful more than the client read (events in flight).
MAX_TOKENS_AFTER_LEAVING = 64


def _sse_disconnect(client: httpx.Client) -> int:
    """Starts a long stream, reads a few tokens, hangs up; returns the tokens read."""
    read = 0
    with client.stream("POST", "/generate", json={**LONG, "stream": True}) as resp:
        assert resp.status_code == 200
        for event in sse_events(resp):
            assert event["type"] == "token", event
            read += 1
            if read >= TOKENS_BEFORE_LEAVING:
                break
    return read


def _ws_disconnect(server: Server) -> int:
    read = 0
    with connect(server.base_url.replace("http://", "ws://") + "/ws") as ws:
        ws.send(json.dumps({"type": "generate", "id": "g", "payload": LONG}))
        while read < TOKENS_BEFORE_LEAVING:
            message = json.loads(ws.recv(timeout=60))
            assert message["type"] == "token", message
            read += 1
    return read


def _hang_up_at_once(server: Server, body: dict[str, Any]) -> None:
    """Sends a request and closes the socket without reading anything."""
    url = urlsplit(server.base_url)
    payload = json.dumps(body).encode()
    head = (
        f"POST {url.path}/generate HTTP/1.1\r\nHost: {url.netloc}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(payload)}\r\n\r\n"
    ).encode()
    with socket.create_connection((url.hostname, url.port)) as sock:
        sock.sendall(head + payload)


def _produced(server: Server, before: dict[str, Any]) -> int:
    after = wait_idle(server)
    return int(
        after["engine"]["tokens_generated_total"] - before["engine"]["tokens_generated_total"]
    )


def test_a_hundred_disconnects_of_each_kind_leak_nothing(
    rel_server: Server, rel_api: httpx.Client
) -> None:
    server = rel_server
    reference = rel_api.post("/generate", json=greedy("The capital of France is")).json()
    # Warm up the pieces that are created once (thread pools, sockets), then measure.
    _sse_disconnect(rel_api)
    _ws_disconnect(server)
    start = wait_idle(server)
    baseline = sample(server.process.pid)
    worst = {"sse": 0, "ws": 0}
    for _ in range(ROUNDS):
        for kind in ("sse", "ws"):
            before = server.status()
            read = _sse_disconnect(rel_api) if kind == "sse" else _ws_disconnect(server)
            extra = _produced(server, before) - read
            worst[kind] = max(worst[kind], extra)
    assert worst["sse"] <= MAX_TOKENS_AFTER_LEAVING, worst
    assert worst["ws"] <= MAX_TOKENS_AFTER_LEAVING, worst

    end = wait_idle(server)
    cancelled = end["engine"]["requests_cancelled"] - start["engine"]["requests_cancelled"]
    assert cancelled == 2 * ROUNDS
    assert end["engine"]["running"] == 0 and end["engine"]["queued"] == 0
    # Sequence slots and KV cells: both slots still take work at once, and a greedy
    # answer is what it was before (stale KV cells in a reused slot would change it).
    parallel = [
        rel_api.post("/generate", json=greedy("The capital of France is")).json()
        for _ in range(end["engine"]["parallel"])
    ]
    assert all(p["data"]["text"] == reference["data"]["text"] for p in parallel)
    after = sample(server.process.pid)
    assert after.fds <= baseline.fds + 4, (baseline, after)
    assert after.threads <= baseline.threads + 2, (baseline, after)


def test_clients_that_hang_up_before_the_answer_starts_release_their_place(
    rel_server: Server, rel_api: httpx.Client
) -> None:
    """The request is admitted and the client is already gone: its queue place and
    sequence must still be released (the response body never starts)."""
    server = rel_server
    start = wait_idle(server)
    for i in range(30):
        _hang_up_at_once(server, {**LONG, "stream": i % 2 == 0})
    # Idle means nothing queued or running and every request counted as ended.
    end = wait_idle(server)
    reached = end["performance"]["requests_total"] - start["performance"]["requests_total"]
    cancelled = end["engine"]["requests_cancelled"] - start["engine"]["requests_cancelled"]
    rejected = end["engine"]["requests_rejected"] - start["engine"]["requests_rejected"]
    # uvicorn drops a request whose connection closed before it was dispatched; every
    # one that reached generation was cancelled, or turned away (admission limit 4).
    assert 0 < reached <= 30
    assert cancelled + rejected == reached and cancelled >= 4
    # Far fewer tokens than 30 generations of 1000 would give.
    produced = end["engine"]["tokens_generated_total"] - start["engine"]["tokens_generated_total"]
    assert produced < 30 * MAX_TOKENS_AFTER_LEAVING
    assert rel_api.post("/generate", json=greedy("Hello")).status_code == 200
