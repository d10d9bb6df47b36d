"""The WebSocket API (/api/v1/ws) on the fake engine, and the one error and done shape
it shares with the SSE stream of POST /api/v1/generate:

  error: {"type": "error", "id": <string>, "data": {"error": <message>, "code": <CODE>,
          "details"?: ...}}; id "" when the message's own id cannot be read
  done:  {"type": "done", "id": <id>, "data": {"completion": <GenerateResponse>}}
  SSE:   {"type": "error", "data": {"error": <message>, "code": <CODE>, "details"?: ...}}
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from starlette.testclient import WebSocketTestSession

from browser_llm.api.app import create_app
from browser_llm.config import DEFAULT_MODEL_ID, Settings
from browser_llm.core.errors import InferenceError
from tests.api.conftest import LOCAL
from tests.api.failing_engine import FailingEngine, StallingEngine
from tests.api.test_generate_shape import sse_events
from tests.fakes import FAKE_PIECES, FakeEngine

WS = "ws://127.0.0.1:3000/api/v1/ws"  # the Host must be one the server serves
MAX_ID = 128


def _client(tmp_path: Path, engine: FakeEngine) -> TestClient:
    return TestClient(create_app(Settings(models_dir=tmp_path / "models"), engine=engine), LOCAL)


@pytest.fixture
def stalling(tmp_path: Path) -> Iterator[tuple[TestClient, StallingEngine]]:
    engine = StallingEngine()
    with _client(tmp_path, engine) as test_client:
        yield test_client, engine


@pytest.fixture
def failing(tmp_path: Path) -> Iterator[TestClient]:
    error = InferenceError("decode failed", {"reason": "test"})
    with _client(tmp_path, FailingEngine(tokens=2, error=error)) as test_client:
        yield test_client


def _send(ws: WebSocketTestSession, kind: str, msg_id: str, payload: Any = None) -> None:
    message: dict[str, Any] = {"type": kind, "id": msg_id}
    if payload is not None:
        message["payload"] = payload
    ws.send_text(json.dumps(message))


def _recv(ws: WebSocketTestSession) -> dict[str, Any]:
    message: dict[str, Any] = json.loads(ws.receive_text())
    return message


def _check_error(message: dict[str, Any], msg_id: str, code: str) -> dict[str, Any]:
    """The one error shape; returns its data."""
    assert message["type"] == "error", message
    assert set(message) == {"type", "id", "data"}, message
    assert message["id"] == msg_id and isinstance(message["id"], str), message
    data: dict[str, Any] = message["data"]
    assert {"error", "code"} <= set(data) <= {"error", "code", "details"}, message
    assert data["code"] == code, message
    assert isinstance(data["error"], str) and data["error"], message
    return data


def _until_end(ws: WebSocketTestSession, msg_id: str) -> tuple[list[str], dict[str, Any]]:
    """The token texts of one generation and its done or error message."""
    tokens: list[str] = []
    while True:
        message = _recv(ws)
        if message.get("id") != msg_id:
            continue
        if message["type"] == "token":
            assert set(message) == {"type", "id", "data"}
            assert set(message["data"]) == {"token"}
            tokens.append(message["data"]["token"])
        elif message["type"] in ("done", "error"):
            return tokens, message


def _probe(ws: WebSocketTestSession) -> None:
    """Proves nothing else was sent before: the next message answers this one (a socket's
    messages are handled and answered in order)."""
    _send(ws, "fly", "probe")
    _check_error(_recv(ws), "probe", "VALIDATION_ERROR")


# ---- generate ------------------------------------------------------------------------
def test_generate_sends_tokens_then_done_with_the_completion(client: TestClient) -> None:
    with client.websocket_connect(WS) as ws:
        _send(ws, "generate", "req-1", {"prompt": "Hello, AI!", "max_tokens": 100})
        tokens, done = _until_end(ws, "req-1")
    assert tokens == list(FAKE_PIECES)
    assert done["type"] == "done", done
    assert set(done) == {"type", "id", "data"}
    assert done["id"] == "req-1"
    assert set(done["data"]) == {"completion"}, done  # as SSE's done event
    completion = done["data"]["completion"]
    assert completion["text"] == "".join(tokens)
    assert completion["tokens"] == len(FAKE_PIECES)
    assert completion["finish_reason"] == "stop"
    assert completion["model"] == DEFAULT_MODEL_ID
    assert set(completion["usage"]) >= {"prompt_tokens", "completion_tokens", "total_tokens"}
    assert set(completion["performance"]) == {"tokens_per_second", "latency_ms", "total_time_ms"}


def test_ws_done_carries_what_sse_done_carries(client: TestClient) -> None:
    body = {"prompt": "Say hi", "max_tokens": 3, "seed": 1}
    sse = sse_events(client.post("/api/v1/generate", json={**body, "stream": True}).text)
    sse_done = sse[-1]
    assert sse_done["type"] == "done"
    with client.websocket_connect(WS) as ws:
        _send(ws, "generate", "same", {**body, "stream": True})  # stream is ignored here
        tokens, done = _until_end(ws, "same")
    assert tokens == [e["data"]["token"] for e in sse[:-1]]
    assert set(done["data"]) == set(sse_done["data"]) == {"completion"}
    ws_completion, sse_completion = done["data"]["completion"], sse_done["data"]["completion"]
    assert set(ws_completion) == set(sse_completion)
    timing_free = {k: v for k, v in sse_completion.items() if k != "performance"}
    assert {k: ws_completion[k] for k in timing_free} == timing_free
    assert ws_completion["finish_reason"] == "length"


def test_two_generations_on_one_socket_keep_their_ids(client: TestClient) -> None:
    with client.websocket_connect(WS) as ws:
        _send(ws, "generate", "a", {"prompt": "one", "max_tokens": 2})
        _send(ws, "generate", "b", {"prompt": "two", "max_tokens": 4})
        ends: dict[str, dict[str, Any]] = {}
        tokens: dict[str, list[str]] = {"a": [], "b": []}
        while len(ends) < 2:
            message = _recv(ws)
            if message["type"] == "token":
                tokens[message["id"]].append(message["data"]["token"])
            else:
                ends[message["id"]] = message
    for msg_id, count in (("a", 2), ("b", 4)):
        assert ends[msg_id]["type"] == "done"
        assert ends[msg_id]["data"]["completion"]["text"] == "".join(tokens[msg_id])
        assert len(tokens[msg_id]) == count


def test_a_failure_mid_generation_is_an_error_for_its_id(failing: TestClient) -> None:
    with failing.websocket_connect(WS) as ws:
        _send(ws, "generate", "g", {"prompt": "hi", "max_tokens": 50})
        tokens, end = _until_end(ws, "g")
    assert tokens == list(FAKE_PIECES[:2])
    data = _check_error(end, "g", "INFERENCE_ERROR")
    assert data["error"] == "decode failed"
    if "details" in data:
        assert data["details"] == {"reason": "test"}


def test_a_model_not_loaded_is_an_error_for_its_id(idle_client: TestClient) -> None:
    with idle_client.websocket_connect(WS) as ws:
        _send(ws, "generate", "g", {"prompt": "hi"})
        _check_error(_recv(ws), "g", "MODEL_NOT_LOADED")


# ---- abort -----------------------------------------------------------------------------
def test_abort_ends_the_generation_with_a_cancelled_error(
    stalling: tuple[TestClient, StallingEngine],
) -> None:
    client, engine = stalling
    with client.websocket_connect(WS) as ws:
        _send(ws, "generate", "long", {"prompt": "Tell a long story", "max_tokens": 2000})
        assert _recv(ws) == {"type": "token", "id": "long", "data": {"token": FAKE_PIECES[0]}}
        _send(ws, "abort", "long")
        tokens, end = _until_end(ws, "long")
        assert tokens == []
        _check_error(end, "long", "CANCELLED")
        # Aborting it again: nothing runs under that id any more.
        _send(ws, "abort", "long")
        _check_error(_recv(ws), "long", "NOT_FOUND")
        # The id is free again and the socket still works.
        _send(ws, "generate", "long", {"prompt": "again"})
        assert _recv(ws)["type"] == "token"
    assert len(engine.submitted) == 2


def test_abort_of_an_unknown_id_is_not_found(client: TestClient) -> None:
    with client.websocket_connect(WS) as ws:
        _send(ws, "abort", "nothing-here")
        _check_error(_recv(ws), "nothing-here", "NOT_FOUND")


def test_a_running_id_cannot_be_reused(stalling: tuple[TestClient, StallingEngine]) -> None:
    client, engine = stalling
    with client.websocket_connect(WS) as ws:
        _send(ws, "generate", "dup", {"prompt": "first"})
        assert _recv(ws)["type"] == "token"
        _send(ws, "generate", "dup", {"prompt": "second"})
        _check_error(_recv(ws), "dup", "VALIDATION_ERROR")
        assert len(engine.submitted) == 1  # the second never reached the engine
        _send(ws, "abort", "dup")
        _check_error(_until_end(ws, "dup")[1], "dup", "CANCELLED")


# ---- subscribe / unsubscribe ---------------------------------------------------------------
def test_subscribe_to_metrics_receives_a_request_metric(client: TestClient) -> None:
    with client.websocket_connect(WS) as ws:
        _send(ws, "subscribe", "sub-1", {"events": ["metric"]})
        _probe(ws)  # the subscription is in place before the request below
        assert client.post("/api/v1/generate", json={"prompt": "hi"}).status_code == 200
        message = _recv(ws)
        assert message["type"] == "metric" and message["id"] == "sub-1", message
        assert message["data"]["kind"] == "request"
        assert message["data"]["completion_tokens"] == len(FAKE_PIECES)


def test_subscribe_to_logs_receives_logs_at_the_level_asked(client: TestClient) -> None:
    with client.websocket_connect(WS) as ws:
        _send(ws, "subscribe", "logs", {"events": ["log"], "level": "info"})
        _probe(ws)
        client.post("/api/v1/generate", json={"prompt": "hi"})
        message = _recv(ws)
        assert message["type"] == "log" and message["id"] == "logs", message
        assert message["data"]["level"] in ("info", "warn", "error")
        assert isinstance(message["data"]["message"], str)


def test_unsubscribe_stops_the_events(client: TestClient) -> None:
    with client.websocket_connect(WS) as ws:
        _send(ws, "subscribe", "sub-1", {"events": ["metric", "log"]})
        _probe(ws)
        _send(ws, "unsubscribe", "other")
        _check_error(_recv(ws), "other", "NOT_FOUND")  # not this socket's subscription
        _send(ws, "unsubscribe", "sub-1")
        client.post("/api/v1/generate", json={"prompt": "hi"})
        _probe(ws)  # no metric or log came in between
        _send(ws, "unsubscribe", "sub-1")
        _check_error(_recv(ws), "sub-1", "NOT_FOUND")  # already gone


def test_a_new_subscription_replaces_the_old_one(client: TestClient) -> None:
    with client.websocket_connect(WS) as ws:
        _send(ws, "subscribe", "old", {"events": ["metric"]})
        _send(ws, "subscribe", "new", {"events": ["metric"]})
        _probe(ws)
        client.post("/api/v1/generate", json={"prompt": "hi"})
        message = _recv(ws)
        assert (message["type"], message["id"]) == ("metric", "new")
        _probe(ws)  # one metric per request: the old subscription is gone


BAD_SUBSCRIBE_PAYLOADS: list[Any] = [
    None,
    [],
    {"events": []},
    {"events": "metric"},
    {"events": ["metric", "gossip"]},
    {"events": ["log"], "level": "loud"},
]


def test_bad_subscribe_payloads_are_validation_errors(client: TestClient) -> None:
    with client.websocket_connect(WS) as ws:
        for payload in BAD_SUBSCRIBE_PAYLOADS:
            ws.send_text(json.dumps({"type": "subscribe", "id": "s", "payload": payload}))
            _check_error(_recv(ws), "s", "VALIDATION_ERROR")


# ---- messages that are not understood --------------------------------------------------------
FRAMES_WITHOUT_AN_ID = [
    "not json",
    "{",
    "[1, 2]",
    '"a string"',
    "42",
    "null",
    json.dumps({"type": "generate", "payload": {"prompt": "hi"}}),  # no id
    json.dumps({"type": "generate", "id": 7, "payload": {"prompt": "hi"}}),
    json.dumps({"type": "generate", "id": None}),
    json.dumps({"type": "generate", "id": ["a"]}),
    json.dumps({"type": "generate", "id": ""}),
    json.dumps({"type": "generate", "id": "x" * (MAX_ID + 1)}),
]


def test_a_message_without_a_readable_id_gets_an_error_with_an_empty_id(
    client: TestClient, fake_engine: FakeEngine
) -> None:
    with client.websocket_connect(WS) as ws:
        for frame in FRAMES_WITHOUT_AN_ID:
            ws.send_text(frame)
            message = _recv(ws)
            assert message.get("id") == "", (frame, message)  # a string, never null
            _check_error(message, "", "VALIDATION_ERROR")
        _probe(ws)  # the socket stays open and usable
    assert fake_engine.submitted == []


def test_the_longest_id_is_accepted_and_echoed(client: TestClient) -> None:
    long_id = "x" * MAX_ID
    with client.websocket_connect(WS) as ws:
        _send(ws, "generate", long_id, {"prompt": "hi", "max_tokens": 1})
        tokens, done = _until_end(ws, long_id)
    assert done["type"] == "done" and done["id"] == long_id
    assert tokens == [FAKE_PIECES[0]]


def test_an_unknown_type_is_an_error_for_its_id(client: TestClient) -> None:
    with client.websocket_connect(WS) as ws:
        for i, kind in enumerate(["fly", "", None, 3, "GENERATE", ["generate"]]):
            ws.send_text(json.dumps({"type": kind, "id": f"m{i}"}))
            _check_error(_recv(ws), f"m{i}", "VALIDATION_ERROR")
        ws.send_text(json.dumps({"id": "no-type"}))
        _check_error(_recv(ws), "no-type", "VALIDATION_ERROR")


INVALID_GENERATE_PAYLOADS: list[Any] = [
    None,
    [],
    "hi",
    {},
    {"prompt": ""},
    {"prompt": 5},
    {"max_tokens": 5},
    {"prompt": "hi", "max_tokens": 0},
    {"prompt": "hi", "max_tokens": 5000},
    {"prompt": "hi", "temperature": 9},
    {"prompt": "hi", "top_p": -1},
    {"prompt": "hi", "top_k": 0},
    {"prompt": "hi", "stop": 7},
]


def test_an_invalid_generate_payload_is_a_validation_error_for_its_id(
    client: TestClient, fake_engine: FakeEngine
) -> None:
    with client.websocket_connect(WS) as ws:
        for i, payload in enumerate(INVALID_GENERATE_PAYLOADS):
            ws.send_text(json.dumps({"type": "generate", "id": f"g{i}", "payload": payload}))
            message = _recv(ws)
            assert message["id"] == f"g{i}", (payload, message)
            _check_error(message, f"g{i}", "VALIDATION_ERROR")
    assert fake_engine.submitted == []


def test_a_too_long_prompt_is_a_validation_error_with_details(client: TestClient) -> None:
    with client.websocket_connect(WS) as ws:
        _send(ws, "generate", "g", {"prompt": "word " * 100})
        data = _check_error(_recv(ws), "g", "VALIDATION_ERROR")
    if "details" in data:
        assert data["details"] == {
            "prompt_tokens": 100,
            "context_length": 64,
            "reason": "context_length_exceeded",
        }


# ---- SSE error events: the same data as WebSocket errors -------------------------------------
def test_sse_error_event_shape(failing: TestClient) -> None:
    resp = failing.post("/api/v1/generate", json={"prompt": "hi", "stream": True, "max_tokens": 50})
    assert resp.status_code == 200
    events = sse_events(resp.text)
    assert [e["type"] for e in events] == ["token", "token", "error"]
    error = events[-1]
    assert set(error) == {"type", "data"}, error
    assert {"error", "code"} <= set(error["data"]) <= {"error", "code", "details"}, error
    assert error["data"]["code"] == "INFERENCE_ERROR"
    assert error["data"]["error"] == "decode failed"
    if "details" in error["data"]:
        assert error["data"]["details"] == {"reason": "test"}


def test_ws_and_sse_errors_carry_the_same_data(failing: TestClient) -> None:
    body = {"prompt": "hi", "max_tokens": 50}
    error = sse_events(failing.post("/api/v1/generate", json={**body, "stream": True}).text)[-1]
    with failing.websocket_connect(WS) as ws:
        _send(ws, "generate", "g", body)
        _, ws_error = _until_end(ws, "g")
    assert ws_error["data"] == error["data"]  # one shape for both transports
