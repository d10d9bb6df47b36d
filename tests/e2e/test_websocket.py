"""The WebSocket API on the real engine."""

from __future__ import annotations

import json
import time
from typing import Any

import httpx
from websockets.sync.client import ClientConnection, connect

from tests.e2e.conftest import Server


def _ws_url(server: Server) -> str:
    return server.base_url.replace("http://", "ws://") + "/ws"


def _recv(ws: ClientConnection, timeout: float = 60) -> dict[str, Any]:
    message: dict[str, Any] = json.loads(ws.recv(timeout=timeout))
    return message


def _until_done(ws: ClientConnection, ids: set[str]) -> dict[str, dict[str, Any]]:
    """Collects messages until every id has its done or error; returns them per id."""
    out: dict[str, dict[str, Any]] = {i: {"tokens": [], "end": None} for i in ids}
    while any(v["end"] is None for v in out.values()):
        msg = _recv(ws)
        if msg["id"] not in out:
            continue
        if msg["type"] == "token":
            out[msg["id"]]["tokens"].append(msg["data"]["token"])
        elif msg["type"] in ("done", "error"):
            out[msg["id"]]["end"] = msg
    return out


def test_two_interleaved_generations_complete_with_their_ids(
    server: Server, api: httpx.Client
) -> None:
    prompts = {"a": "Name a colour.", "b": "Name an animal."}
    expected = {
        k: api.post("/generate", json={"prompt": p, "max_tokens": 30, "temperature": 0}).json()[
            "data"
        ]["text"]
        for k, p in prompts.items()
    }
    with connect(_ws_url(server)) as ws:
        for key, prompt in prompts.items():
            payload = {"prompt": prompt, "max_tokens": 30, "temperature": 0}
            ws.send(json.dumps({"type": "generate", "id": key, "payload": payload}))
        results = _until_done(ws, set(prompts))
    for key in prompts:
        end = results[key]["end"]
        assert end["type"] == "done", end
        assert "".join(results[key]["tokens"]) == end["data"]["completion"]["text"] == expected[key]


def test_abort_stops_the_generation(server: Server) -> None:
    with connect(_ws_url(server)) as ws:
        payload = {"prompt": "Tell a long story", "max_tokens": 2000, "ignore_eos": True}
        ws.send(json.dumps({"type": "generate", "id": "long", "payload": payload}))
        while _recv(ws)["type"] != "token":
            pass
        ws.send(json.dumps({"type": "abort", "id": "long"}))
        while (msg := _recv(ws))["type"] == "token":
            pass
        assert msg == {
            "type": "error",
            "id": "long",
            "data": {"error": "aborted", "code": "CANCELLED"},  # SSE's error data
        }
        time.sleep(0.3)
        before = server.status()["engine"]
        time.sleep(0.5)
        after = server.status()["engine"]
        assert after["tokens_generated_total"] == before["tokens_generated_total"]
        assert after["running"] == 0
        ws.send(json.dumps({"type": "abort", "id": "long"}))
        assert _recv(ws)["data"]["code"] == "NOT_FOUND"  # the socket stays usable


def test_subscription_receives_a_metric_for_a_rest_request(
    server: Server, api: httpx.Client
) -> None:
    with connect(_ws_url(server)) as ws:
        ws.send(
            json.dumps({"type": "subscribe", "id": "s1", "payload": {"events": ["metric", "log"]}})
        )
        time.sleep(0.2)
        api.post("/generate", json={"prompt": "hi", "max_tokens": 5})
        seen: set[str] = set()
        deadline = time.monotonic() + 30
        while not {"metric", "log"} <= seen and time.monotonic() < deadline:
            msg = _recv(ws)
            assert msg["id"] == "s1"
            if msg["type"] == "metric" and msg["data"]["kind"] == "request":
                assert msg["data"]["completion_tokens"] >= 1
            seen.add(msg["type"])
        assert {"metric", "log"} <= seen
        ws.send(json.dumps({"type": "unsubscribe", "id": "s1"}))


def test_garbage_frames_get_errors_and_the_socket_stays_open(server: Server) -> None:
    # The spec types `id` as a string: "" when the message's own id could not be read.
    bad = [
        ("not json", ""),
        ("[1, 2]", ""),
        (json.dumps({"type": "generate"}), ""),
        (json.dumps({"type": "fly", "id": "x"}), "x"),
        (json.dumps({"type": "generate", "id": "g", "payload": {"prompt": ""}}), "g"),
        (json.dumps({"type": "generate", "id": "g", "payload": {"max_tokens": 5}}), "g"),
        (json.dumps({"type": "subscribe", "id": "s", "payload": {"events": ["x"]}}), "s"),
    ]
    with connect(_ws_url(server)) as ws:
        for frame, expected_id in bad:
            ws.send(frame)
            msg = _recv(ws)
            assert msg["type"] == "error" and msg["id"] == expected_id, (frame, msg)
            assert msg["data"]["code"] == "VALIDATION_ERROR"
        ws.send(
            json.dumps(
                {"type": "generate", "id": "ok", "payload": {"prompt": "hi", "max_tokens": 3}}
            )
        )
        assert _until_done(ws, {"ok"})["ok"]["end"]["type"] == "done"


def test_closing_the_socket_frees_its_sequences(server: Server) -> None:
    with connect(_ws_url(server)) as ws:
        for i in range(3):
            payload = {"prompt": f"Story {i}", "max_tokens": 2000, "ignore_eos": True}
            ws.send(json.dumps({"type": "generate", "id": f"g{i}", "payload": payload}))
        seen = 0
        while seen < 6:
            if _recv(ws)["type"] == "token":
                seen += 1
        assert server.status()["engine"]["running"] >= 1
    deadline = time.monotonic() + 10
    while server.status()["engine"]["running"] and time.monotonic() < deadline:
        time.sleep(0.05)
    assert server.status()["engine"]["running"] == 0
