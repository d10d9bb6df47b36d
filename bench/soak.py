"""Soak: 1,000 mixed requests (streaming, non-streaming, cancelled, invalid, WebSocket)
against a real server, several at once. Prints resident memory growth, the request
counters' balance, cancel latency and shutdown time. Usage:

    .venv/bin/python bench/soak.py [--requests 1000] [--concurrency 4] [--cancels 20]

Resident memory is read from /proc after a warm-up of 50 requests, so one-time
allocations (thread pools, llama.cpp scratch buffers) are not counted as growth.
Cancel latency: a stream is read until its 3rd token, the client hangs up, and the
server's /status is polled until nothing runs (the poll adds up to ~10 ms).
Shutdown time: SIGTERM with one stream running (grace 30 s) until the process exits.
"""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.e2e.conftest import Server, start_server, stop_server  # noqa: E402
from tests.reliability.mixed_load import run_mixed_load  # noqa: E402
from tests.reliability.probes import sample, sse_events, wait_idle  # noqa: E402

_MB = 1024 * 1024


def _cancel_latencies(server: Server, n: int) -> list[float]:
    body = {"prompt": "Tell a long story", "max_tokens": 1000, "ignore_eos": True, "stream": True}
    out = []
    with httpx.Client(base_url=server.base_url, timeout=60) as client:
        for _ in range(n):
            wait_idle(server)
            with client.stream("POST", "/generate", json=body) as resp:
                for i, _event in enumerate(sse_events(resp)):
                    if i == 2:
                        break
                left = time.perf_counter()
            # Poll gently: a tight /status loop takes the cores the decode step needs
            # (llama.cpp's two threads meet at a barrier after every graph node, so one
            # preempted thread stalls both) and made a 12 ms step last up to 1.5 s.
            while server.status()["engine"]["running"]:
                time.sleep(0.01)
            out.append((time.perf_counter() - left) * 1000)
    return out


def _shutdown_time(tmp: Path, threads: str) -> tuple[float, int]:
    tmp.mkdir(parents=True, exist_ok=True)
    server = start_server(tmp, BROWSER_LLM_SHUTDOWN_GRACE_S="30", BROWSER_LLM_THREADS=threads)
    body = {"prompt": "Count", "max_tokens": 64, "ignore_eos": True, "stream": True}
    with (
        httpx.Client(base_url=server.base_url, timeout=60) as client,
        client.stream("POST", "/generate", json=body) as resp,
    ):
        events = sse_events(resp)
        next(events)
        started = time.perf_counter()
        os.killpg(server.process.pid, signal.SIGTERM)
        for _ in events:
            pass
        code = server.process.wait(timeout=60)
    return time.perf_counter() - started, code


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requests", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--cancels", type=int, default=20)
    parser.add_argument("--threads", default="2", help="llama.cpp threads (1 on a busy machine)")
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="browser-llm-soak-"))
    server = start_server(
        tmp,
        BROWSER_LLM_CONTEXT_SIZE="1024",
        BROWSER_LLM_PARALLEL="4",
        BROWSER_LLM_THREADS=args.threads,
    )
    try:
        run_mixed_load(server.base_url, 50, args.concurrency)  # warm-up
        start = wait_idle(server)
        before = sample(server.process.pid)
        began = time.perf_counter()
        marks: list[str] = []

        def progress(i: int) -> None:
            if (i + 1) % 200 == 0:
                now = sample(server.process.pid)
                marks.append(f"  after {i + 1:5d}: RSS {now.rss_bytes / _MB:7.1f} MB")

        result = run_mixed_load(server.base_url, args.requests, args.concurrency, progress)
        elapsed = time.perf_counter() - began
        end = wait_idle(server)
        after = sample(server.process.pid)
        latencies = _cancel_latencies(server, args.cancels)
    finally:
        stop_server(server)
    shutdown_s, exit_code = _shutdown_time(tmp / "shutdown", args.threads)

    perf = end["performance"]
    balanced = perf["requests_total"] == perf["requests_success"] + perf["requests_error"]
    print(f"Soak: {args.requests} mixed requests, {args.concurrency} at once, {elapsed:.0f} s")
    for key, count in sorted(result.outcomes.items()):
        print(f"  {key:24s} {count:5d}")
    print(*marks, sep="\n")
    growth = (after.rss_bytes - before.rss_bytes) / _MB
    print(
        f"RSS: {before.rss_bytes / _MB:.1f} MB -> {after.rss_bytes / _MB:.1f} MB "
        f"(growth {growth:+.1f} MB); threads {before.threads} -> {after.threads}; "
        f"fds {before.fds} -> {after.fds}"
    )
    print(
        f"counters: requests_total {perf['requests_total']} = success "
        f"{perf['requests_success']} + error {perf['requests_error']}: {balanced} "
        f"(this run: {perf['requests_total'] - start['performance']['requests_total']})"
    )
    print(
        f"cancel latency over {len(latencies)} streams: median "
        f"{statistics.median(latencies):.1f} ms, max {max(latencies):.1f} ms"
    )
    print(f"shutdown with one stream running: {shutdown_s:.2f} s, exit code {exit_code}")
    print(f"unexpected: {len(result.unexpected)}", *result.unexpected[:10], sep="\n  ")
    return 0 if balanced and not result.unexpected and exit_code == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
