"""Context limits, errors and client disconnects on the real engine."""

from __future__ import annotations

import time

import httpx
import pytest

from tests.e2e.conftest import Server
from tests.e2e.helpers import generate, stream_events


def test_prompt_longer_than_context_is_400(tiny_server: Server) -> None:
    context = tiny_server.status()["engine"]["context_length"]
    resp = httpx.post(
        f"{tiny_server.base_url}/generate",
        json={"prompt": "hello " * (context + 10), "raw": True},
        timeout=60,
    )
    assert resp.status_code == 400
    error = resp.json()["error"]
    assert error["code"] == "VALIDATION_ERROR"
    assert error["details"]["context_length"] == context
    assert error["details"]["prompt_tokens"] > context


def test_max_tokens_is_clamped_to_the_context(tiny_server: Server) -> None:
    context = tiny_server.status()["engine"]["context_length"]
    prompt = "hello " * (context - 20)
    with httpx.Client(base_url=tiny_server.base_url, timeout=120) as client:
        data = generate(
            client, prompt=prompt, raw=True, max_tokens=4096, ignore_eos=True, temperature=0
        )
    assert data["finish_reason"] == "length"
    assert data["usage"]["total_tokens"] == context


def test_unknown_model_is_404(api: httpx.Client) -> None:
    assert api.get("/models/no-such-model").status_code == 404
    resp = api.post("/models/no-such-model/load")
    assert resp.status_code == 404 and resp.json()["error"]["code"] == "NOT_FOUND"


def test_validation_error_on_real_server(api: httpx.Client) -> None:
    resp = api.post("/generate", json={"prompt": "x", "top_k": 1000})
    assert resp.status_code == 400
    assert resp.json()["error"]["details"]["field"] == "top_k"


def _wait_idle(server: Server, timeout: float = 30) -> dict:  # type: ignore[type-arg]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status = server.status()
        if status["engine"]["running"] == 0 and status["engine"]["queued"] == 0:
            return status
        time.sleep(0.05)
    pytest.fail("engine did not become idle")


def test_disconnect_stops_generation(server: Server) -> None:
    _wait_idle(server)
    before = server.status()["engine"]["tokens_generated_total"]
    body = {"prompt": "Tell a long story", "max_tokens": 4096, "ignore_eos": True, "stream": True}
    with (
        httpx.Client(base_url=server.base_url, timeout=60) as client,
        client.stream("POST", "/generate", json=body) as resp,
    ):
        received = 0
        for line in resp.iter_lines():
            if line.startswith("data: "):
                received += 1
            if received >= 5:
                break
    status = _wait_idle(server, timeout=5)
    produced = status["engine"]["tokens_generated_total"] - before
    time.sleep(0.5)
    assert server.status()["engine"]["tokens_generated_total"] - before == produced
    assert produced < 200, f"generation kept going after the client left ({produced} tokens)"


def test_queued_request_whose_client_left_never_runs(tiny_server: Server) -> None:
    server = tiny_server  # one sequence slot, so the second request queues
    _wait_idle(server)
    before = server.status()
    long_body = {"prompt": "Count slowly", "max_tokens": 300, "ignore_eos": True, "raw": True}
    with (
        httpx.Client(base_url=server.base_url, timeout=60) as client,
        client.stream("POST", "/generate", json={**long_body, "stream": True}) as resp,
    ):
        lines = resp.iter_lines()
        next(lines)  # the long generation is running
        with pytest.raises(httpx.ReadTimeout):
            httpx.post(
                f"{server.base_url}/generate",
                json={"prompt": "Queued and abandoned", "max_tokens": 50, "ignore_eos": True},
                timeout=0.3,
            )
        for _ in lines:
            pass
    after = _wait_idle(server)
    produced = (
        after["engine"]["tokens_generated_total"] - before["engine"]["tokens_generated_total"]
    )
    assert produced == 300, "only the long generation ran"
    assert after["engine"]["requests_cancelled"] == before["engine"]["requests_cancelled"] + 1


def test_multibyte_output_streams_unbroken(api: httpx.Client) -> None:
    body = {
        "prompt": "日本の首都は東京です。中国の首都は",
        "raw": True,
        "max_tokens": 40,
        "temperature": 0,
        "ignore_eos": True,
    }
    events = stream_events(api, **body)
    tokens = [e["data"]["token"] for e in events if e["type"] == "token"]
    text = "".join(tokens)
    assert any(ord(ch) > 0x2E80 for ch in text), text
    assert "\ufffd" not in text
    assert text == events[-1]["data"]["completion"]["text"]
