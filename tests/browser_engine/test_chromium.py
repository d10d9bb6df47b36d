"""The real /engine page in Debian's chromium, with the SwiftShader WebGPU adapter.

These machines have no GPU. Chromium's software adapter (tests/chromium.py flags) lacks
shader-f16, which llama.cpp's WebGPU backend requires, so wllama runs on WebAssembly and
the tab must say so. One server (BROWSER_LLM_ENGINE=browser with native fallback) and one
browser for the module; each test starts from an attached tab with the model loaded.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, BrowserContext, Page, sync_playwright
from websockets.sync.client import connect

from tests.browser_engine.conftest import MODEL, wait_status
from tests.chromium import CHROMIUM, CHROMIUM_FLAGS
from tests.e2e.conftest import Server, served
from tests.e2e.helpers import stream_events

GREEDY = {"temperature": 0, "max_tokens": 8}

pytestmark = pytest.mark.skipif(
    shutil.which(CHROMIUM) is None, reason="make test installs chromium; run through make"
)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    with served(
        tmp_path_factory.mktemp("chromium"),
        BROWSER_LLM_ENGINE="browser",
        BROWSER_LLM_ENGINE_FALLBACK="true",
        BROWSER_LLM_CONTEXT_SIZE="1024",
    ) as srv:
        yield srv


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as p:
        instance = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_FLAGS)
        try:
            yield instance
        finally:
            instance.close()


@pytest.fixture(scope="module")
def context(browser: Browser) -> Iterator[BrowserContext]:
    ctx = browser.new_context()  # one profile: its OPFS cache outlives pages
    try:
        yield ctx
    finally:
        ctx.close()


def _engine_url(server: Server) -> str:
    return server.base_url.removesuffix("/api/v1") + "/engine"


def _ready(server: Server) -> dict[str, Any]:
    return wait_status(
        server,
        lambda s: s["browser"]["attached"] and s["browser"]["state"] == "ready",
        timeout=180,
    )


@pytest.fixture
def page(server: Server, context: BrowserContext) -> Iterator[Page]:
    """An attached tab with the model loaded (opened anew when a test closed the last)."""
    pages = context.pages
    tab = pages[-1] if pages else context.new_page()
    if not pages:
        tab.goto(_engine_url(server))
    _ready(server)
    yield tab


@pytest.fixture
def api(server: Server) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.base_url, timeout=300) as client:
        yield client


def test_tab_attaches_downloads_the_model_and_reports_its_storage(
    server: Server, page: Page
) -> None:
    assert page.evaluate("self.crossOriginIsolated") is True  # multi-threaded WASM allowed
    status = _ready(server)
    browser = status["browser"]
    assert status["status"] == "ready"
    assert status["model"] == {"id": MODEL, "loaded": True}
    assert browser["multi_thread"] is True
    assert browser["storage_persisted"] in (True, False)  # the browser's answer to persist()
    assert browser["storage_quota_gb"] > 0
    # /status shows the tab's own storage figures while the browser engine is in use.
    assert status["system"]["storage_quota_gb"] == browser["storage_quota_gb"]
    assert status["system"]["storage_used_gb"] == browser["storage_used_gb"]
    assert browser["model_file_requests"] >= 1
    assert "attached" in page.inner_text("body")


def test_the_tab_reports_the_swiftshader_adapter_and_what_llama_cpp_ran_on(
    server: Server, page: Page
) -> None:
    status = _ready(server)
    browser = status["browser"]
    adapter = browser["adapter"]
    assert (adapter["vendor"], adapter["architecture"]) == ("google", "swiftshader")
    assert adapter["is_fallback_adapter"] is True
    assert adapter["shader_f16"] is False
    # llama.cpp's WebGPU backend needs shader-f16: no device, every layer on WebAssembly.
    assert browser["webgpu_available"] is False
    assert "shader-f16" in browser["webgpu_unavailable_reason"]
    assert browser["backend"] == "wasm"
    assert browser["gpu_layers_offloaded"] == 0
    assert browser["last_load"]["backend"] == "wasm"
    assert browser["gpu_vram_gb"] is None
    assert status["system"]["webgpu_available"] is False
    assert status["system"]["gpu_vram_gb"] is None
    assert "WebAssembly" in page.inner_text("#backend")


_HOOK_ON_A_REAL_DEVICE = """async () => {
  const { DeviceWatch } = await import('/engine/app/webgpu.js');
  const events = [];
  let seen;
  const lost = new Promise((resolve) => { seen = resolve; });
  const watch = new DeviceWatch((event) => {
    events.push(event);
    if (event.type === 'device') watch.destroyDevice();
    if (event.type === 'lost') seen();
  });
  // The hook as wllama's worker gets it, then what llama.cpp's WebGPU backend does first.
  const code = watch.hookSource() +
    'navigator.gpu.requestAdapter().then((a) => a.requestDevice());';
  const worker = new Worker(URL.createObjectURL(new Blob([code], { type: 'text/javascript' })));
  await Promise.race([lost, new Promise((r) => setTimeout(r, 20000))]);
  worker.terminate();
  return events;
}"""


def test_the_worker_hook_sees_a_real_swiftshader_device_and_its_loss(page: Page) -> None:
    """The hook the page puts in wllama's worker, on a real device in a real worker
    (wllama itself creates none on this adapter: see the test above)."""
    events = page.evaluate(_HOOK_ON_A_REAL_DEVICE)
    kinds = [e["type"] for e in events]
    assert kinds[:2] == ["device", "lost"], events
    assert events[0]["architecture"] == "swiftshader"
    assert events[1]["reason"] == "destroyed" and events[1]["injected"] is True


def test_device_loss_mid_stream_is_webgpu_error_and_the_tab_recovers(
    server: Server, page: Page, api: httpx.Client
) -> None:
    losses = server.status()["health"]["webgpu_context_losses"]
    events: list[dict[str, Any]] = []
    body = {"prompt": "Tell a long story.", "max_tokens": 400, "ignore_eos": True, "stream": True}
    with api.stream("POST", "/generate", json=body) as resp:
        for line in resp.iter_lines():
            if line.startswith("data: "):
                events.append(json.loads(line[6:]))
                if len(events) == 1:
                    # The page's handler for a loss of wllama's device, as the hook calls it.
                    page.evaluate("window.browserLLM.simulateDeviceLoss()")
    assert events[0]["type"] == "token"
    assert (events[-1]["type"], events[-1]["data"]["code"]) == ("error", "WEBGPU_ERROR")
    status = wait_status(
        server,
        lambda s: (
            s["browser"]["state"] == "ready" and s["health"]["webgpu_context_losses"] > losses
        ),
        timeout=180,
    )
    assert status["health"]["webgpu_context_losses"] == losses + 1
    assert api.post("/generate", json={"prompt": "Hi", **GREEDY}).status_code == 200


def test_forced_webgpu_on_an_adapter_llama_cpp_cannot_use_says_why(
    tmp_path_factory: pytest.TempPathFactory, context: BrowserContext
) -> None:
    with served(
        tmp_path_factory.mktemp("forced-webgpu"),
        BROWSER_LLM_ENGINE="browser",
        BROWSER_LLM_BROWSER_BACKEND="webgpu",
        BROWSER_LLM_CONTEXT_SIZE="1024",
    ) as forced:
        tab = context.new_page()
        try:
            tab.goto(_engine_url(forced))
            status = wait_status(forced, lambda s: s["browser"]["state"] == "error")
            assert status["browser"]["model_file_requests"] == 0  # refused before downloading
            resp = httpx.post(f"{forced.base_url}/generate", json={"prompt": "Hi"}, timeout=60)
            error = resp.json()["error"]
            assert "WEBGPU_ERROR" in error["message"] and "shader-f16" in error["message"]
        finally:
            tab.close()


def test_generate_through_rest_runs_in_the_tab(page: Page, api: httpx.Client) -> None:
    before = page.evaluate("window.browserLLM.state.requests")
    resp = api.post("/generate", json={"prompt": "Name a colour.", **GREEDY})
    assert resp.status_code == 200, resp.text
    data = resp.json()["data"]
    assert data["text"].strip()
    assert data["model"] == MODEL
    assert data["finish_reason"] in ("stop", "length")
    assert 1 <= data["usage"]["completion_tokens"] <= 8
    assert data["usage"]["prompt_tokens"] > 5  # the chat template was applied
    assert page.evaluate("window.browserLLM.state.requests") == before + 1


def test_greedy_text_matches_between_requests_and_streaming(page: Page, api: httpx.Client) -> None:
    body = {"prompt": "Write one word about the sea.", **GREEDY}
    whole = api.post("/generate", json=body).json()["data"]
    events = stream_events(api, **body)
    assert events[-1]["type"] == "done", events[-1]
    pieces = [e["data"]["token"] for e in events if e["type"] == "token"]
    assert len(pieces) >= 1
    assert "".join(pieces) == events[-1]["data"]["completion"]["text"] == whole["text"]


def test_seed_max_tokens_and_stop(page: Page, api: httpx.Client) -> None:
    body = {"prompt": "Tell me a short story.", "temperature": 0.9, "seed": 7, "max_tokens": 6}
    first = api.post("/generate", json=body).json()["data"]
    second = api.post("/generate", json=body).json()["data"]
    assert first["text"] == second["text"]  # same seed, same sampling
    assert first["usage"]["completion_tokens"] <= 6
    cut = api.post(
        "/generate", json={"prompt": "Count: 1, 2, 3,", "raw": True, "stop": [","], **GREEDY}
    ).json()["data"]
    assert "," not in cut["text"]
    assert cut["finish_reason"] == "stop"


def test_json_mode_constrains_the_output(page: Page, api: httpx.Client) -> None:
    body = {"prompt": "Give a JSON object with a name.", "json_mode": True, **GREEDY}
    data = api.post("/generate", json=body).json()["data"]
    assert data["text"].lstrip()[:1] in ("{", "[")


def test_abort_through_websocket(server: Server, page: Page, api: httpx.Client) -> None:
    ws_url = server.base_url.replace("http://", "ws://") + "/ws"
    with connect(ws_url) as ws:
        payload = {"prompt": "Tell a long story.", "max_tokens": 400, "ignore_eos": True}
        ws.send(json.dumps({"type": "generate", "id": "a1", "payload": payload}))
        first = json.loads(ws.recv(timeout=120))
        assert first["type"] == "token", first
        ws.send(json.dumps({"type": "abort", "id": "a1"}))
        while (end := json.loads(ws.recv(timeout=60)))["type"] == "token":
            pass
        assert (end["type"], end["data"]["code"]) == ("error", "CANCELLED")
    # The tab stopped and serves the next request.
    assert api.post("/generate", json={"prompt": "Hi", **GREEDY}).status_code == 200


def test_closing_the_tab_mid_stream_gives_an_error_then_a_new_tab_loads_from_cache(
    server: Server, context: BrowserContext, page: Page, api: httpx.Client
) -> None:
    downloads = server.status()["browser"]["model_file_requests"]
    events: list[dict[str, Any]] = []
    body = {"prompt": "Tell a long story.", "max_tokens": 400, "ignore_eos": True, "stream": True}
    with api.stream("POST", "/generate", json=body) as resp:
        for line in resp.iter_lines():
            if line.startswith("data: "):
                events.append(json.loads(line[6:]))
                if len(events) == 1:
                    page.close()  # the tab goes away mid-generation
    assert events[0]["type"] == "token"
    assert events[-1]["type"] == "error"
    assert events[-1]["data"]["code"] == "INFERENCE_ERROR"
    assert "browser tab" in events[-1]["data"]["error"]
    wait_status(server, lambda s: not s["browser"]["attached"])
    # Fallback is configured: with no tab, the native engine answers.
    assert api.post("/generate", json={"prompt": "Hi", **GREEDY}).status_code == 200
    fresh = context.new_page()
    fresh.goto(_engine_url(server))
    status = _ready(server)
    assert status["browser"]["last_load"]["from_cache"] is True
    assert status["browser"]["model_file_requests"] == downloads  # no second download
    assert api.post("/generate", json={"prompt": "Hi", **GREEDY}).status_code == 200


def test_reload_reattaches_and_loads_from_the_browser_cache(
    server: Server, page: Page, api: httpx.Client
) -> None:
    before = server.status()["browser"]
    page.reload()
    status = wait_status(
        server,
        lambda s: (
            s["browser"]["tabs_attached_total"] > before["tabs_attached_total"]
            and s["browser"]["state"] == "ready"
        ),
        timeout=180,
    )
    assert status["browser"]["last_load"]["from_cache"] is True
    assert status["browser"]["model_file_requests"] == before["model_file_requests"]
    assert api.post("/generate", json={"prompt": "Hi", **GREEDY}).status_code == 200
