"""The server side of the browser engine against a scripted tab (real server process)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from websockets.sync.client import connect

from tests.browser_engine.conftest import MODEL, attach_url, wait_status
from tests.browser_engine.fake_tab import FakeTab, Reply, answer, hang
from tests.e2e.conftest import Server
from tests.e2e.helpers import stream_events


def _attach(server: Server, reply: Reply = answer, **readings: Any) -> FakeTab:
    tab = FakeTab(attach_url(server), readings, reply)
    wait_status(server, lambda s: s["browser"]["attached"] and s["status"] == "ready")
    return tab


@pytest.fixture
def tab(relay_server: Server) -> Iterator[FakeTab]:
    fake = _attach(relay_server)
    yield fake
    fake.close()


def test_generate_relays_text_usage_and_model(tab: FakeTab, relay_api: httpx.Client) -> None:
    resp = relay_api.post("/generate", json={"prompt": "Say hello", "temperature": 0})
    assert resp.status_code == 200, resp.text
    data = resp.json()["data"]
    assert data["text"] == "Hello, world"
    assert data["finish_reason"] == "stop"
    assert data["usage"] == {
        "prompt_tokens": 5,
        "completion_tokens": 3,
        "total_tokens": 8,
        "cached_prompt_tokens": 0,
    }
    assert data["model"] == MODEL


def test_sse_streams_the_tabs_pieces(tab: FakeTab, relay_api: httpx.Client) -> None:
    events = stream_events(relay_api, prompt="Say hello", max_tokens=2)
    assert [e["data"]["token"] for e in events[:-1]] == ["Hello", ","]
    done = events[-1]
    assert done["type"] == "done"
    assert done["data"]["completion"]["finish_reason"] == "length"


def test_parameters_and_rendered_prompt_reach_the_tab(
    tab: FakeTab, relay_api: httpx.Client
) -> None:
    body = {
        "prompt": "Name a colour",
        "max_tokens": 7,
        "temperature": 0.5,
        "top_p": 0.8,
        "top_k": 12,
        "frequency_penalty": 0.25,
        "presence_penalty": 0.5,
        "stop": ["\n\n"],
        "seed": 42,
        "json_mode": True,
    }
    assert relay_api.post("/generate", json=body).status_code == 200
    sent = tab.wait_for("generate")["data"]
    # The server renders the model's chat template, as the native engine does.
    turn = "<|im_start|>user\nName a colour<|im_end|>\n<|im_start|>assistant\n"
    assert sent["prompt"].endswith(turn)
    expected = {"max_tokens": 7, "temperature": 0.5, "top_p": 0.8, "top_k": 12, "seed": 42}
    expected |= {"frequency_penalty": 0.25, "presence_penalty": 0.5, "stop": ["\n\n"]}
    assert {k: sent[k] for k in expected} == expected
    assert "root" in sent["grammar"]  # JSON mode travels as a GBNF grammar
    raw = {"prompt": "Once upon a time", "raw": True, "max_tokens": 1}
    assert relay_api.post("/generate", json=raw).status_code == 200
    assert tab.wait_for("generate")["data"]["prompt"] == "Once upon a time"


def test_stop_strings_are_applied_to_relayed_text(tab: FakeTab, relay_api: httpx.Client) -> None:
    resp = relay_api.post("/generate", json={"prompt": "hi", "stop": [", w"]})
    assert resp.json()["data"]["text"] == "Hello"
    assert tab.wait_for("abort")["type"] == "abort"  # the tab is told to stop early


def test_tab_closing_mid_stream_ends_the_request_with_a_clear_error(
    relay_server: Server, relay_api: httpx.Client
) -> None:
    fake = _attach(relay_server, reply=hang)
    events: list[dict[str, Any]] = []
    body = {"prompt": "Tell a story", "stream": True}
    with relay_api.stream("POST", "/generate", json=body) as r:
        for line in r.iter_lines():
            if line.startswith("data: "):
                events.append(json.loads(line[6:]))
                if events[-1]["type"] == "token":
                    fake.close()  # the tab goes away while the request runs
    assert events[0] == {"type": "token", "data": {"token": "Once"}}
    assert events[-1]["type"] == "error"
    assert events[-1]["data"]["code"] == "INFERENCE_ERROR"
    assert "browser tab" in events[-1]["data"]["error"]
    status = wait_status(relay_server, lambda s: not s["browser"]["attached"])
    assert status["status"] == "idle"
    # Without a tab, requests are refused at once rather than left waiting.
    refused = relay_api.post("/generate", json={"prompt": "hi"})
    assert refused.status_code == 503
    assert "/engine" in refused.json()["error"]["message"]
    # A new tab attaches, is told to load the model again, and serves.
    again = _attach(relay_server)
    try:
        assert relay_api.post("/generate", json={"prompt": "hi"}).json()["data"]["text"]
    finally:
        again.close()


def test_abort_over_websocket_reaches_the_tab(relay_server: Server) -> None:
    fake = _attach(relay_server, reply=hang)
    try:
        with connect(relay_server.base_url.replace("http://", "ws://") + "/ws") as ws:
            payload = {"prompt": "Tell a story", "max_tokens": 500}
            ws.send(json.dumps({"type": "generate", "id": "g1", "payload": payload}))
            first = json.loads(ws.recv(timeout=30))
            assert first["type"] == "token"
            ws.send(json.dumps({"type": "abort", "id": "g1"}))
            end = json.loads(ws.recv(timeout=30))
            assert (end["type"], end["data"]["code"]) == ("error", "CANCELLED")
        sent = fake.wait_for("generate")
        assert fake.wait_for("abort")["id"] == sent["id"]
    finally:
        fake.close()


def test_gpu_failure_in_the_tab_is_webgpu_error(
    relay_server: Server, relay_api: httpx.Client
) -> None:
    def gpu_fails(tab: FakeTab, message: dict[str, Any]) -> None:
        error = {"type": "error", "id": message["id"], "code": "WEBGPU_ERROR"}
        tab.send({**error, "message": "GPU device was lost"})

    fake = _attach(relay_server, reply=gpu_fails, webgpu_available=True, webgpu_context_losses=1)
    try:
        resp = relay_api.post("/generate", json={"prompt": "hi"})
        assert resp.status_code == 500
        assert resp.json()["error"]["code"] == "WEBGPU_ERROR"
        status = relay_server.status()
        assert status["system"]["webgpu_available"] is True
        assert status["health"]["webgpu_context_losses"] == 1
    finally:
        fake.close()


def test_a_model_over_the_tabs_storage_quota_is_storage_error(
    relay_server: Server, relay_api: httpx.Client
) -> None:
    fake = FakeTab(attach_url(relay_server), {"storage_quota_gb": 0.05, "storage_used_gb": 0.01})
    try:
        wait_status(relay_server, lambda s: s["browser"]["attached"])
        resp = relay_api.post(f"/models/{MODEL}/load")
        assert resp.status_code == 507
        error = resp.json()["error"]
        assert error["code"] == "STORAGE_ERROR"
        assert error["details"]["reason"] == "over_browser_storage_quota"
        assert error["details"]["size_bytes"] > 0.04 * 1024**3
        assert not any(m["type"] == "load" for m in fake.log)  # the tab never tried
    finally:
        fake.close()


def test_the_newest_tab_wins(relay_server: Server, relay_api: httpx.Client) -> None:
    first = _attach(relay_server)
    second = _attach(relay_server)
    try:
        assert first.wait_for("replaced")["type"] == "replaced"
        assert relay_api.post("/generate", json={"prompt": "hi"}).status_code == 200
        assert any(m["type"] == "generate" for m in second.log)
        assert not any(m["type"] == "generate" for m in first.log)
        assert relay_server.status()["browser"]["tabs_attached_total"] >= 2
    finally:
        first.close()
        second.close()


def test_status_reports_the_tabs_readings(relay_server: Server) -> None:
    fake = _attach(relay_server, storage_quota_gb=12.5, storage_used_gb=0.25)
    try:
        status = relay_server.status()
        assert status["system"]["storage_quota_gb"] == 12.5
        assert status["system"]["storage_used_gb"] == 0.25
        assert status["system"]["gpu_vram_gb"] is None  # WebGPU has no memory figure
        assert status["browser"]["threads"] == 2
        fake.send({"type": "readings", "data": {"storage_used_gb": 0.5, "memory_errors": 2}})
        status = wait_status(relay_server, lambda s: s["system"]["storage_used_gb"] == 0.5)
        assert status["health"]["memory_errors"] == 2
    finally:
        fake.close()


def test_attach_needs_a_hello_and_a_local_origin(relay_server: Server) -> None:
    with connect(attach_url(relay_server)) as ws:
        ws.send(json.dumps({"type": "readings", "data": {}}))
        with pytest.raises(Exception):  # noqa: B017 - closed by the server, any close error
            ws.recv(timeout=10)
    with pytest.raises(Exception):  # noqa: B017 - the handshake is refused
        connect(attach_url(relay_server), origin="http://evil.example")  # type: ignore[arg-type]


def test_logprobs_are_a_400_on_the_browser_engine(tab: FakeTab, relay_server: Server) -> None:
    """wllama sends the tab's text only, no logits: asking for logprobs there is refused."""
    url = relay_server.base_url.replace("/api/v1", "/v1/chat/completions")
    body = {"messages": [{"role": "user", "content": "hi"}], "logprobs": True}
    resp = httpx.post(url, json=body, timeout=60)
    assert resp.status_code == 400, resp.text
    assert resp.json()["error"]["param"] == "logprobs"
    assert all(m["type"] != "generate" for m in tab.log)  # never sent to the tab
