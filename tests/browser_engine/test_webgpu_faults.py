"""WebGPU faults and a silent tab, server side, against a scripted tab (real server process).

The real page's side of the same faults runs in chromium: test_chromium.py.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from websockets.sync.client import connect

from tests.browser_engine.conftest import attach_url, wait_status
from tests.browser_engine.fake_tab import FakeTab, hang
from tests.e2e.conftest import Server
from tests.e2e.helpers import stream_events

WEBGPU_READINGS = {
    "webgpu_available": True,
    "backend": "webgpu",
    "gpu_layers_offloaded": 31,
    "adapter": {"vendor": "acme", "architecture": "rdna9", "shader_f16": True},
}


def _lose_device_after_first_piece(tab: FakeTab, message: dict[str, Any]) -> None:
    """Streams one piece, then reports the loss of wllama's device (as the page does)."""
    rid = message["id"]
    tab.send({"type": "admitted", "id": rid, "prompt_tokens": 5})
    tab.send({"type": "token", "id": rid, "text": "Once"})
    lost = {"reason": "unknown", "message": "the WebGPU device running the model was lost"}
    tab.send({"type": "device_lost", "data": {**lost, "model_id": message["data"].get("model")}})
    tab.send({"type": "readings", "data": {"webgpu_context_losses": 1}})
    error = {"code": "WEBGPU_ERROR", "message": "the WebGPU device running the model was lost"}
    tab.send({"type": "error", "id": rid, **error})
    tab.reply = _answer_after_recovery


def _answer_after_recovery(tab: FakeTab, message: dict[str, Any]) -> None:
    rid = message["id"]
    tab.send({"type": "admitted", "id": rid, "prompt_tokens": 5})
    tab.send({"type": "token", "id": rid, "text": "Back"})
    done = {"finish_reason": "stop", "prompt_tokens": 5, "completion_tokens": 1}
    tab.send({"type": "done", "id": rid, "data": done})


def _rest(server: Server, api: httpx.Client) -> tuple[str, str]:
    resp = api.post("/generate", json={"prompt": "Tell a story", "max_tokens": 50})
    assert resp.status_code == 500, resp.text
    return resp.json()["error"]["code"], ""


def _sse(server: Server, api: httpx.Client) -> tuple[str, str]:
    events = stream_events(api, prompt="Tell a story", max_tokens=50)
    return events[-1]["data"]["code"], events[0]["data"]["token"]


def _ws(server: Server, api: httpx.Client) -> tuple[str, str]:
    with connect(server.base_url.replace("http://", "ws://") + "/ws") as ws:
        payload = {"prompt": "Tell a story", "max_tokens": 50}
        ws.send(json.dumps({"type": "generate", "id": "w1", "payload": payload}))
        first = json.loads(ws.recv(timeout=30))
        end = json.loads(ws.recv(timeout=30))
        assert end["type"] == "error", end
        return end["data"]["code"], first["data"]["token"]


@pytest.mark.parametrize("transport", [_rest, _sse, _ws], ids=["rest", "sse", "websocket"])
def test_device_loss_mid_generation_is_webgpu_error_then_the_model_is_reloaded(
    relay_server: Server,
    relay_api: httpx.Client,
    transport: Callable[[Server, httpx.Client], tuple[str, str]],
) -> None:
    fake = FakeTab(attach_url(relay_server), WEBGPU_READINGS, _lose_device_after_first_piece)
    try:
        wait_status(relay_server, lambda s: s["browser"]["attached"] and s["status"] == "ready")
        code, first = transport(relay_server, relay_api)
        assert code == "WEBGPU_ERROR"
        assert first in ("", "Once")
        loads = [m for m in fake.log if m["type"] == "load"]
        assert loads[0]["data"]["backend"] == "auto"  # BROWSER_LLM_BROWSER_BACKEND
        # The server reloads the model in the tab by itself; the next request succeeds.
        status = wait_status(relay_server, lambda s: s["browser"]["state"] == "ready")
        assert len([m for m in fake.log if m["type"] == "load"]) == 2
        assert status["health"]["webgpu_context_losses"] == 1
        resp = relay_api.post("/generate", json={"prompt": "hi"})
        assert resp.status_code == 200, resp.text
        assert resp.json()["data"]["text"] == "Back"
    finally:
        fake.close()


def test_webgpu_readings_reach_status(relay_server: Server) -> None:
    fake = FakeTab(attach_url(relay_server), {**WEBGPU_READINGS, "storage_persisted": True})
    try:
        status = wait_status(relay_server, lambda s: s["browser"]["attached"])
        browser = status["browser"]
        assert browser["backend"] == "webgpu"
        assert browser["gpu_layers_offloaded"] == 31
        assert browser["adapter"]["architecture"] == "rdna9"
        assert browser["adapter"]["is_fallback_adapter"] is False
        assert browser["storage_persisted"] is True
        assert browser["gpu_vram_gb"] is None
        assert status["system"]["webgpu_available"] is True
    finally:
        fake.close()


def test_a_load_the_tab_refuses_for_webgpu_leaves_requests_saying_why(
    relay_server: Server, relay_api: httpx.Client
) -> None:
    def refuse(tab: FakeTab, message: dict[str, Any]) -> None:
        failed = {"model_id": message["data"]["model_id"], "code": "WEBGPU_ERROR"}
        failed["message"] = "WebGPU is required but this tab cannot use it: no shader-f16"
        tab.send({"type": "load_failed", "id": message["id"], "data": failed})

    fake = FakeTab(attach_url(relay_server), on_load=refuse)
    try:
        wait_status(relay_server, lambda s: s["browser"]["attached"] and s["status"] == "error")
        resp = relay_api.post("/generate", json={"prompt": "hi"})
        assert resp.status_code == 503
        error = resp.json()["error"]
        assert error["code"] == "MODEL_NOT_LOADED"
        assert "WEBGPU_ERROR" in error["message"] and "shader-f16" in error["message"]
        assert relay_server.status()["browser"]["state"] == "error"
    finally:
        fake.close()


def test_a_tab_that_stops_answering_is_dropped_and_its_request_fails(
    relay_server: Server, relay_api: httpx.Client
) -> None:
    fake = FakeTab(attach_url(relay_server), reply=hang)
    try:
        wait_status(relay_server, lambda s: s["browser"]["attached"] and s["status"] == "ready")
        fake.frozen = True  # the page hangs: no pong, no token, nothing
        started = time.monotonic()
        resp = relay_api.post("/generate", json={"prompt": "Tell a story", "max_tokens": 50})
        assert resp.status_code == 500, resp.text
        error = resp.json()["error"]
        assert error["code"] == "INFERENCE_ERROR"
        assert "stopped answering" in error["message"]
        assert time.monotonic() - started < 30  # the timeout is 3 s; this bounds a hang
        assert not relay_server.status()["browser"]["attached"]
    finally:
        fake.close()
