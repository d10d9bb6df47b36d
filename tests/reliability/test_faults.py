"""An injected engine fault (BROWSER_LLM_FAULT_INJECT, testing only): the request gets
its error in the envelope or as an SSE error event, and the server carries on."""

from __future__ import annotations

import httpx
import pytest

from tests.e2e.conftest import Server
from tests.reliability.probes import greedy, sse_events, wait_idle

PROBE = greedy("The capital of France is")


def _healthy(api: httpx.Client, expected_text: str) -> None:
    resp = api.post("/generate", json=PROBE)
    assert resp.status_code == 200, resp.text
    assert resp.json()["data"]["text"] == expected_text


@pytest.fixture
def reference(rel_server: Server, rel_api: httpx.Client) -> str:
    wait_idle(rel_server)
    text: str = rel_api.post("/generate", json=PROBE).json()["data"]["text"]
    return text


@pytest.mark.parametrize(
    ("marker", "code"), [("[[fault:decode]]", "INFERENCE_ERROR"), ("[[fault:raise@2]]", None)]
)
def test_fault_without_streaming_is_a_500_with_its_request_id(
    rel_server: Server, rel_api: httpx.Client, reference: str, marker: str, code: str | None
) -> None:
    before = wait_idle(rel_server)
    resp = rel_api.post(
        "/generate",
        json={"prompt": f"Say hello {marker}", "max_tokens": 20},
        headers={"X-Request-ID": "fault-test-1"},
    )
    assert resp.status_code == 500
    body = resp.json()
    assert body["success"] is False
    # A decode failure is INFERENCE_ERROR; an unexpected exception in the step is INTERNAL.
    assert body["error"]["code"] == (code or "INTERNAL_ERROR")
    assert body["metadata"]["requestId"] == "fault-test-1" == resp.headers["X-Request-ID"]
    after = wait_idle(rel_server)
    assert after["status"] == "ready"
    assert after["performance"]["requests_error"] == before["performance"]["requests_error"] + 1
    assert after["health"]["stability_score"] < 1
    _healthy(rel_api, reference)


def test_fault_in_a_stream_ends_it_with_an_error_event(
    rel_server: Server, rel_api: httpx.Client, reference: str
) -> None:
    body = {"prompt": "Count to twenty [[fault:decode@5]]", "max_tokens": 100, "stream": True}
    with rel_api.stream("POST", "/generate", json=body) as resp:
        assert resp.status_code == 200
        events = list(sse_events(resp))  # ends: the server closed the stream
    kinds = [e["type"] for e in events]
    assert kinds[-1] == "error" and kinds.count("error") == 1 and "done" not in kinds
    assert kinds[:-1] == ["token"] * (len(kinds) - 1) and len(kinds) > 1
    assert events[-1]["data"]["code"] == "INFERENCE_ERROR"
    wait_idle(rel_server)
    _healthy(rel_api, reference)


def test_fault_fails_the_whole_decode_step_and_only_it(
    rel_server: Server, rel_api: httpx.Client, reference: str
) -> None:
    """A decode failure takes down the sequences decoded in that step; a request that
    arrives afterwards is served normally."""
    with rel_api.stream(
        "POST", "/generate", json={**greedy("Count", 400), "ignore_eos": True, "stream": True}
    ) as bystander:
        events = sse_events(bystander)
        assert next(events)["type"] == "token"
        faulty = rel_api.post("/generate", json={"prompt": "x [[fault:decode]]"})
        assert faulty.status_code == 500
        rest = [e["type"] for e in events]
    assert rest[-1] in ("error", "done")
    wait_idle(rel_server)
    _healthy(rel_api, reference)
