"""API shape of /generate against the fake engine: envelope, SSE framing, errors."""

from __future__ import annotations

import json
from typing import Any

from fastapi.testclient import TestClient

from tests.fakes import FAKE_PIECES, FakeEngine


def sse_events(body: str) -> list[dict[str, Any]]:
    assert body.endswith("\n\n"), "every SSE event ends with a blank line"
    events = []
    for block in body.split("\n\n")[:-1]:
        assert block.startswith("data: "), block
        events.append(json.loads(block[len("data: ") :]))
    return events


def test_generate_wraps_completion_in_envelope(client: TestClient) -> None:
    resp = client.post("/api/v1/generate", json={"prompt": "Say hi"})
    assert resp.status_code == 200
    body = resp.json()
    assert body["success"] is True
    assert "error" not in body
    data = body["data"]
    assert data["text"] == "".join(FAKE_PIECES)
    assert data["tokens"] == len(FAKE_PIECES)
    assert data["finish_reason"] == "stop"
    assert data["usage"] == {
        "prompt_tokens": 2,
        "completion_tokens": 5,
        "total_tokens": 7,
        "cached_prompt_tokens": 0,
    }
    assert set(data["performance"]) == {"tokens_per_second", "latency_ms", "total_time_ms"}
    meta = body["metadata"]
    assert meta["requestId"].startswith("req_")
    assert resp.headers["X-Request-ID"] == meta["requestId"]
    assert isinstance(meta["timestamp"], int)
    assert meta["version"]


def test_generate_passes_parameters_and_defaults(
    client: TestClient, fake_engine: FakeEngine
) -> None:
    client.post(
        "/api/v1/generate",
        json={"prompt": "x", "max_tokens": 3, "temperature": 0, "stop": "END", "seed": 7},
    )
    client.post("/api/v1/generate", json={"prompt": "y", "top_p": None})
    first, second = (r.params for r in fake_engine.submitted)
    assert (first.max_tokens, first.temperature, first.stop, first.seed) == (3, 0.0, ("END",), 7)
    assert (second.max_tokens, second.temperature, second.top_p, second.top_k) == (
        512,
        0.7,
        0.95,
        40,
    )


def test_stream_is_sse_tokens_then_done(client: TestClient) -> None:
    resp = client.post(
        "/api/v1/generate", json={"prompt": "Say hi", "stream": True, "max_tokens": 3}
    )
    assert resp.status_code == 200
    assert resp.headers["content-type"].startswith("text/event-stream")
    events = sse_events(resp.text)
    assert [e["type"] for e in events] == ["token"] * 3 + ["done"]
    tokens = "".join(e["data"]["token"] for e in events[:-1])
    completion = events[-1]["data"]["completion"]
    assert completion["text"] == tokens == "Hello, wor"
    assert completion["finish_reason"] == "length"


def test_stream_errors_before_output_are_json(client: TestClient) -> None:
    long_prompt = "word " * 100
    resp = client.post("/api/v1/generate", json={"prompt": long_prompt, "stream": True})
    assert resp.status_code == 400
    assert resp.json()["error"]["details"] == {
        "prompt_tokens": 100,
        "context_length": 64,
        "reason": "context_length_exceeded",
    }


def test_generate_without_model_is_model_not_loaded(idle_client: TestClient) -> None:
    resp = idle_client.post("/api/v1/generate", json={"prompt": "hi"})
    assert resp.status_code == 503
    assert resp.json()["error"]["code"] == "MODEL_NOT_LOADED"
    assert resp.json()["success"] is False
