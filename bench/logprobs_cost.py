"""What log-probabilities cost (issue 20 item 5): decode speed of the same greedy chat
requests without logprobs, with `logprobs: true` (top_logprobs 0), and with
top_logprobs 20, on this checkout; and "free when not asked": the same requests without
logprobs on another checkout (--repo, e.g. main, run by its own .venv).

Both servers run at once (idle, a server costs no CPU) and the requests alternate,
variant by variant, in a rotating order, so drift on a shared machine hits all alike.
Decode tok/s is measured by the client over the whole path (engine process, wire, API,
SSE): (completion tokens - 1) / (time of the last content chunk - time of the first);
"paired" is the median over rounds of each round's ratio to the round's no-logprobs run.
CPU ms/token is the CPU time of the server's processes (API process and engine process,
from /proc) over all of a variant's requests, divided by their tokens: it still shows a
cost when neighbours make the wall-clock figures noisy.

    .venv/bin/python bench/logprobs_cost.py --repo /work/main --runs 10
"""

from __future__ import annotations

import argparse
import json
import os
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


def _cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process and its descendants (Linux /proc)."""
    total, pending = 0.0, [pid]
    tick = os.sysconf("SC_CLK_TCK")
    while pending:
        current = pending.pop()
        try:
            fields = Path(f"/proc/{current}/stat").read_text().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / tick  # utime, stime
            for task in Path(f"/proc/{current}/task").iterdir():
                pending += [int(c) for c in (task / "children").read_text().split()]
        except (FileNotFoundError, ProcessLookupError):
            continue
    return total


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
    paired: dict[str, list[float]] = {label: [] for label, _, _ in VARIANTS}
    cpu: dict[str, float] = {label: 0.0 for label, _, _ in VARIANTS}
    counts: dict[str, list[int]] = {label: [] for label, _, _ in VARIANTS}
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
        pids = {"this": this.pid, "repo": repo.pid}
        for run in range(args.runs):
            shift = run % len(VARIANTS)
            this_round: dict[str, float] = {}
            for label, server, extra in VARIANTS[shift:] + VARIANTS[:shift]:
                before = _cpu_seconds(pids[server])
                speed, completion = measure(client, urls[server], args.tokens, extra)
                cpu[label] += _cpu_seconds(pids[server]) - before
                speeds[label].append(speed)
                counts[label].append(completion)
                this_round[label] = speed
            for label in this_round:
                paired[label].append(this_round[label] / this_round["no logprobs"])
    base = statistics.median(speeds["no logprobs"])
    print(f"Greedy chat, {args.tokens} tokens max, {args.threads} threads, {args.runs} runs")
    print(
        f"{'variant':<22} {'tok/s':>6} {'p25-p75':>11} {'ratio':>6} {'paired':>6} "
        f"{'paired p25-p75':>14} {'CPU ms/tok':>10}  tokens"
    )
    for label, _, _ in VARIANTS:
        median = statistics.median(speeds[label])
        q1, _, q3 = statistics.quantiles(speeds[label], n=4)
        p1, _, p3 = statistics.quantiles(paired[label], n=4)
        per_token = cpu[label] * 1000 / sum(counts[label])
        tokens = ",".join(str(c) for c in sorted(set(counts[label])))
        print(
            f"{label:<22} {median:>6.1f} {f'{q1:.0f}-{q3:.0f}':>11} {median / base:>6.3f} "
            f"{statistics.median(paired[label]):>6.3f} {f'{p1:.3f}-{p3:.3f}':>14} "
            f"{per_token:>10.2f}  {tokens}"
        )
    print("ratio, paired: to 'no logprobs' on this checkout; the --repo row is the A/B for")
    print("'free when not asked' (this checkout / --repo is its inverse)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
