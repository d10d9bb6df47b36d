"""What log-probabilities cost (issue 20 item 5): decode speed of the same greedy chat
requests without logprobs, with `logprobs: true` (top_logprobs 0), and with
top_logprobs 20, on this checkout; and "free when not asked": the same requests without
logprobs on another checkout (--repo, e.g. main, run by its own .venv).

Both servers run at once (idle, a server costs no CPU) and the requests alternate,
variant by variant, in a rotating order, so drift on a shared machine hits all alike.
Decode tok/s is measured by the client over the whole path (engine process, wire, API,
SSE): (completion tokens - 1) / (time of the last content chunk - time of the first).

    .venv/bin/python bench/logprobs_cost.py --repo /work/main --runs 10
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))

from json_speed import CheckoutTarget

MESSAGES = [
    {
        "role": "user",
        "content": "Write a long, detailed story about a lighthouse keeper and a storm.",
    }
]
# (label, server, extra request fields)
VARIANTS: list[tuple[str, str, dict[str, Any]]] = [
    ("no logprobs", "this", {}),
    ("logprobs, top 0", "this", {"logprobs": True}),
    ("logprobs, top 20", "this", {"logprobs": True, "top_logprobs": 20}),
    ("no logprobs (--repo)", "repo", {}),
]


def measure(
    client: httpx.Client, url: str, tokens: int, extra: dict[str, Any]
) -> tuple[float, int]:
    """One streamed greedy chat request: (decode tok/s, completion tokens)."""
    body = {
        "messages": MESSAGES,
        "max_tokens": tokens,
        "temperature": 0,
        "stream": True,
        "stream_options": {"include_usage": True},
        **extra,
    }
    first = last = 0.0
    completion = 0
    with client.stream("POST", url, json=body) as resp:
        resp.raise_for_status()
        for line in resp.iter_lines():
            if not line.startswith("data: ") or line == "data: [DONE]":
                continue
            chunk = json.loads(line[6:])
            now = time.perf_counter()
            if chunk.get("usage"):
                completion = chunk["usage"]["completion_tokens"]
            for choice in chunk["choices"]:
                if choice["delta"].get("content"):
                    first = first or now
                    last = now
    return (completion - 1) / (last - first), completion


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repo", type=Path, required=True, help="checkout to compare (main)")
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--tokens", type=int, default=128)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    here = Path(__file__).resolve().parent.parent
    speeds: dict[str, list[float]] = {label: [] for label, _, _ in VARIANTS}
    counts: dict[str, set[int]] = {label: set() for label, _, _ in VARIANTS}
    with (
        CheckoutTarget(here, args.threads) as this,
        CheckoutTarget(args.repo.resolve(), args.threads) as repo,
        httpx.Client(timeout=600) as client,
    ):
        urls = {
            "this": f"http://127.0.0.1:{this.port}/v1/chat/completions",
            "repo": f"http://127.0.0.1:{repo.port}/v1/chat/completions",
        }
        for _label, server, extra in VARIANTS:  # warm-up (prompt cache, first-use costs)
            measure(client, urls[server], args.tokens, extra)
        for run in range(args.runs):
            shift = run % len(VARIANTS)
            for label, server, extra in VARIANTS[shift:] + VARIANTS[:shift]:
                speed, completion = measure(client, urls[server], args.tokens, extra)
                speeds[label].append(speed)
                counts[label].add(completion)
    base = statistics.median(speeds["no logprobs"])
    print(f"Greedy chat, {args.tokens} tokens max, {args.threads} threads, {args.runs} runs")
    print(f"{'variant':<24} {'decode tok/s':>12} {'p25-p75':>13} {'ratio':>7}  tokens")
    for label, _, _ in VARIANTS:
        median = statistics.median(speeds[label])
        q1, _, q3 = statistics.quantiles(speeds[label], n=4)
        tokens = ",".join(str(c) for c in sorted(counts[label]))
        spread = f"{q1:.1f}-{q3:.1f}"
        print(f"{label:<24} {median:>12.1f} {spread:>13} {median / base:>6.3f}x  {tokens}")
    print("ratio: to 'no logprobs' on this checkout; the --repo row is the A/B for")
    print("'free when not asked' (its inverse: this checkout / --repo)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
