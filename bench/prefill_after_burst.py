"""Time to read a ~340-token prompt (max_tokens 1) right after another process used both
cores: Browser LLM and llama-server take turns with no pause between them, so each of our
requests starts while the thread governor still counts llama-server's burst as a neighbour.
Each prompt ends differently, so nothing is reused from a cache; llama-server's reading is
its own prompt_ms plus the request.

    .venv/bin/python bench/prefill_after_burst.py [--rounds 3] [--fixed-threads]
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import sys
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))

from grounded_prompts import grounded_prompts
from harness import BrowserLLMTarget, LlamaServerTarget, default_model_path
from llama_server_build import llama_server_binary


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--fixed-threads", action="store_true", help="governor off")
    args = parser.parse_args()
    prompts = [p for _, p in grounded_prompts(False)]
    adaptive = "false" if args.fixed_threads else "true"
    ours = BrowserLLMTarget(
        args.threads,
        parallel=8,
        BROWSER_LLM_PROMPT_CACHE_GB="0",
        BROWSER_LLM_ADAPTIVE_THREADS=adaptive,
    )
    theirs = LlamaServerTarget(
        llama_server_binary(), default_model_path(), args.threads, 8, ctx_per_slot=2048
    )
    mine: list[float] = []
    peer: list[float] = []
    with contextlib.ExitStack() as stack:
        for target in (ours, theirs):
            stack.enter_context(target)
        for i, prompt in enumerate(prompts[: args.rounds * 3]):
            text = f"{prompt} ({i})"
            started = time.perf_counter()
            body = {"prompt": text, "max_tokens": 1, "raw": True}
            got = httpx.post(
                f"http://127.0.0.1:{ours.port}/api/v1/generate", json=body, timeout=300
            ).json()["data"]
            mine.append(time.perf_counter() - started)
            started = time.perf_counter()
            body = {"prompt": text, "n_predict": 1, "cache_prompt": False}
            httpx.post(f"http://127.0.0.1:{theirs.port}/completion", json=body, timeout=300)
            peer.append(time.perf_counter() - started)
            tokens = got["usage"]["prompt_tokens"]
            print(
                f"{tokens} tokens: Browser LLM {mine[-1] * 1000:.0f} ms, "
                f"llama-server {peer[-1] * 1000:.0f} ms"
            )
    governor = "off" if args.fixed_threads else "on"
    print(
        f"median: Browser LLM {statistics.median(mine) * 1000:.0f} ms, llama-server "
        f"{statistics.median(peer) * 1000:.0f} ms (governor {governor})"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
