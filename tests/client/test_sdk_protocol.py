"""Python SDK pieces that need no server: SSE parsing across chunk splits, error mapping, retry."""

from __future__ import annotations

import json

import httpx
import pytest

from browser_llm.client import (
    BrowserLLMClient,
    ModelNotLoadedError,
    RateLimitError,
    ValidationError,
)
from browser_llm.client.protocol import SSEParser

EVENTS = [
    {"type": "token", "data": {"token": "Héllo "}},
    {"type": "token", "data": {"token": "🙂 漢字"}},
    {"type": "done", "data": {"completion": {"text": "Héllo 🙂 漢字"}}},
]
WIRE = b"".join(f"data: {json.dumps(e, ensure_ascii=False)}\n\n".encode() for e in EVENTS)


@pytest.mark.parametrize("size", [1, 2, 3, 5, 7, 64, len(WIRE)])
def test_sse_parser_survives_any_chunking(size: int) -> None:
    parser = SSEParser()
    got = []
    for i in range(0, len(WIRE), size):
        got.extend(parser.feed(WIRE[i : i + size]))
    assert got == EVENTS


def _envelope_error(
    code: str, status: int, headers: dict[str, str] | None = None
) -> httpx.Response:
    body = {
        "success": False,
        "error": {"code": code, "message": "no"},
        "metadata": {"requestId": "req_1", "timestamp": 0, "version": "x"},
    }
    return httpx.Response(status, json=body, headers=headers)


def test_error_codes_map_to_classes() -> None:
    answers = iter(
        [_envelope_error("MODEL_NOT_LOADED", 503), _envelope_error("VALIDATION_ERROR", 400)]
    )
    transport = httpx.MockTransport(lambda request: next(answers))
    with BrowserLLMClient(transport=transport) as client:
        with pytest.raises(ModelNotLoadedError) as err:
            client.generate("hi")
        assert err.value.code == "MODEL_NOT_LOADED" and err.value.request_id == "req_1"
        with pytest.raises(ValidationError):
            client.generate("hi")


@pytest.mark.parametrize(("code", "status"), [("RATE_LIMIT", 429), ("OVERLOADED", 503)])
def test_retry_honours_retry_after_then_succeeds(
    monkeypatch: pytest.MonkeyPatch, code: str, status: int
) -> None:
    slept: list[float] = []
    monkeypatch.setattr("browser_llm.client.sync_client.time.sleep", slept.append)
    ok = httpx.Response(200, json={"success": True, "data": {"models": []}, "metadata": {}})
    answers = iter(
        [
            # A full queue (OVERLOADED, not in the spec) is retried like RATE_LIMIT.
            _envelope_error(code, status, {"Retry-After": "3"}),
            _envelope_error(code, status, {"Retry-After": "1"}),
            ok,
        ]
    )
    transport = httpx.MockTransport(lambda request: next(answers))
    with BrowserLLMClient(transport=transport, retries=3) as client:
        assert client.get_models() == {"models": []}
    assert slept == [3.0, 2.0]  # max(Retry-After, 1 s), then max(Retry-After, 2 s)


def test_no_retry_by_default() -> None:
    transport = httpx.MockTransport(
        lambda r: _envelope_error("RATE_LIMIT", 429, {"Retry-After": "9"})
    )
    with BrowserLLMClient(transport=transport) as client, pytest.raises(RateLimitError) as err:
        client.get_status()
    assert err.value.retry_after == 9.0
