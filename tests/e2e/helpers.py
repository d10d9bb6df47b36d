"""Small helpers for end-to-end tests: SSE parsing and greedy requests."""

from __future__ import annotations

import json
from typing import Any

import httpx


def generate(api: httpx.Client, **body: Any) -> dict[str, Any]:
    resp = api.post("/generate", json=body)
    assert resp.status_code == 200, resp.text
    data: dict[str, Any] = resp.json()["data"]
    return data


def stream_events(api: httpx.Client, **body: Any) -> list[dict[str, Any]]:
    """All SSE events of one streamed generation, checking the framing as it goes."""
    events = []
    with api.stream("POST", "/generate", json={**body, "stream": True}) as resp:
        assert resp.status_code == 200
        assert resp.headers["content-type"].startswith("text/event-stream")
        buffer = ""
        for chunk in resp.iter_text():
            buffer += chunk
            while "\n\n" in buffer:
                block, buffer = buffer.split("\n\n", 1)
                assert block.startswith("data: "), block
                events.append(json.loads(block[6:]))
        assert buffer == ""
    return events
