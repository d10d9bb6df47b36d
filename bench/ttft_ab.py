"""Time to first token, engine process against in-process engine, one request at a time.

Two Browser LLM servers (default, and BROWSER_LLM_ENGINE_PROCESS=false), 2 threads each,
up at once; short greedy requests (8 tokens, a fresh first word each) alternate between
them with a pause in between, the order flipping every pair. Prints p50, mean and min of
the client-measured time to first token. `make bench` measures it under load; this one
isolates the boundary's share of a single request's latency.

Usage: .venv/bin/python bench/ttft_ab.py [--requests 40]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from harness import BrowserLLMTarget, measure_stream


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requests", type=int, default=40, help="per server")
    args = parser.parse_args()
    process = BrowserLLMTarget(threads=2)
    process.name = "engine process"
    in_process = BrowserLLMTarget(threads=2, BROWSER_LLM_ENGINE_PROCESS="false")
    in_process.name = "in-process engine"
    ttft: dict[str, list[float]] = {process.name: [], in_process.name: []}
    with process, in_process:
        for target in (process, in_process):
            measure_stream(target, "warm up", 8)
        for i in range(args.requests):
            for target in (process, in_process) if i % 2 else (in_process, process):
                time.sleep(0.3)  # the other server's threads are idle again
                sample = measure_stream(target, f"{i}. Write a story about a cat.", 8)
                ttft[target.name].append(sample.ttft_ms)
    for name, values in ttft.items():
        print(
            f"{name:<20} ttft p50 {statistics.median(values):6.1f} ms, "
            f"mean {statistics.mean(values):6.1f}, min {min(values):6.1f}"
        )
    a, b = (statistics.median(ttft[t.name]) for t in (process, in_process))
    print(f"engine process / in-process: {a / b:.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
