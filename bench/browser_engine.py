"""Browser engine relay cost: tokens/s through the REST API vs wllama called in the page.

Starts Browser LLM with BROWSER_LLM_ENGINE=browser, opens /engine in Debian's
chromium (headless, WASM: no GPU here), then alternates, request by request:
  - REST: a streaming POST /generate (128 tokens, greedy, ignore_eos, raw prompt);
    decode tok/s measured by this client from the SSE token events, so the tab ->
    server -> client relay is inside the figure;
  - direct: the same wllama options (the tab's last relayed request, replayed)
    through createCompletion inside the page; decode tok/s from the chunk times.
Relay cost = 1 - REST / direct (target <= 5%). It also prints what the tab ran on
(backend, layers offloaded, adapter) and the model's load time, from /status.

    .venv/bin/python bench/browser_engine.py [--runs 5] [--tokens 128] [--backend auto]
    # on a machine with a GPU: Chromium's own GPU instead of the SwiftShader adapter
    .venv/bin/python bench/browser_engine.py --backend webgpu --gpu
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
from playwright.sync_api import Page, sync_playwright

sys.path.insert(0, str(Path(__file__).resolve().parent))
from harness import PROMPT, free_port

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.chromium import CHROMIUM, CHROMIUM_FLAGS


def start_server(port: int, folder: Path, backend: str) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "BROWSER_LLM_BROWSER_BACKEND": backend,
        "BROWSER_LLM_PORT": str(port),
        "BROWSER_LLM_ENGINE": "browser",
        "BROWSER_LLM_CONTEXT_SIZE": "1024",
        "BROWSER_LLM_MODELS_DIR": str(folder / "models"),
        "BROWSER_LLM_RATE_LIMIT_GENERATE": "100000",
        "BROWSER_LLM_RATE_LIMIT_STATUS": "100000",
        "BROWSER_LLM_RATE_LIMIT_OTHER": "100000",
    }
    log = (folder / "server.log").open("wb")
    return subprocess.Popen(
        [sys.executable, "-m", "browser_llm.cli", "serve"],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def wait_up(base: str, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{base}/api/v1/health", timeout=5).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    raise RuntimeError("the server did not start")


def wait_ready(base: str, timeout: float = 300) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            browser: dict[str, Any] = httpx.get(f"{base}/api/v1/status", timeout=5).json()["data"][
                "browser"
            ]
            if browser["attached"] and browser["state"] == "ready":
                return browser
            if browser["state"] == "error":
                raise RuntimeError(f"the tab could not load the model: {browser}")
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise RuntimeError("the browser tab never became ready")


def chromium_flags(gpu: bool) -> list[str]:
    """The tests' flags; with --gpu, Chromium's own GPU instead of the software adapter."""
    if not gpu:
        return CHROMIUM_FLAGS
    software = ("--disable-gpu", "--use-webgpu-adapter=swiftshader")
    return [f for f in CHROMIUM_FLAGS if f not in software] + ["--ignore-gpu-blocklist"]


def via_rest(base: str, tokens: int) -> tuple[float, int]:
    body = {
        "prompt": PROMPT,
        "raw": True,
        "max_tokens": tokens,
        "temperature": 0,
        "ignore_eos": True,
        "stream": True,
    }
    times: list[float] = []
    with httpx.stream("POST", f"{base}/api/v1/generate", json=body, timeout=600) as resp:
        for line in resp.iter_lines():
            if not line.startswith("data: "):
                continue
            event = json.loads(line[6:])
            if event["type"] == "token":
                times.append(time.perf_counter())
            elif event["type"] == "error":
                raise RuntimeError(event["data"])
            else:
                n = event["data"]["completion"]["usage"]["completion_tokens"]
    return (n - 1) / (times[-1] - times[0]), n


def direct(page: Page) -> tuple[float, int]:
    result: dict[str, Any] = page.evaluate(
        "window.browserLLM.direct(window.browserLLM.state.lastOptions)"
    )
    n = int(result["usage"]["completion_tokens"])
    return (n - 1) / result["decode_s"], n


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--tokens", type=int, default=128)
    parser.add_argument("--backend", choices=("auto", "webgpu", "wasm"), default="auto")
    parser.add_argument("--gpu", action="store_true", help="use the machine's GPU (see README)")
    args = parser.parse_args()
    # A SIGTERM (e.g. `timeout`) must still stop the server started below.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    with tempfile.TemporaryDirectory() as tmp:
        server = start_server(port, Path(tmp), args.backend)
        try:
            with sync_playwright() as p:
                browser = p.chromium.launch(
                    executable_path=CHROMIUM, headless=True, args=chromium_flags(args.gpu)
                )
                wait_up(base)
                page = browser.new_page()
                page.goto(f"{base}/engine")
                tab = wait_ready(base)
                via_rest(base, 16)  # warm-up; also leaves the options for direct()
                direct(page)
                rest_tps: list[float] = []
                direct_tps: list[float] = []
                for run in range(args.runs):
                    r, rn = via_rest(base, args.tokens)
                    d, dn = direct(page)
                    rest_tps.append(r)
                    direct_tps.append(d)
                    print(
                        f"run {run + 1}: REST {r:.2f} tok/s ({rn}), direct {d:.2f} tok/s ({dn})",
                        flush=True,
                    )
                served = page.evaluate("window.browserLLM.state.requests")
                browser.close()
        finally:
            os.killpg(server.pid, signal.SIGTERM)
            server.wait(timeout=30)
    rest, raw = statistics.median(rest_tps), statistics.median(direct_tps)
    print()
    adapter = tab["adapter"] or {}
    print(
        f"Browser engine in headless chromium: backend {tab['backend']} "
        f"({tab['gpu_layers_offloaded']} layers offloaded), adapter "
        f"{adapter.get('vendor')} {adapter.get('architecture')} "
        f"(webgpu_available={tab['webgpu_available']}: {tab['webgpu_unavailable_reason']}), "
        f"model load {tab['last_load']['load_time_s']:.2f} s"
    )
    print(f"{args.tokens} tokens, {args.runs} runs")
    print(f"{'path':<36}{'decode tok/s (median)':>22}")
    print(f"{'REST API -> server -> tab (SSE)':<36}{rest:>22.2f}")
    print(f"{'wllama directly in the same page':<36}{raw:>22.2f}")
    print(f"relay cost: {(1 - rest / raw) * 100:+.1f}% (target <= 5%); tab ran {served} requests")


if __name__ == "__main__":
    main()
