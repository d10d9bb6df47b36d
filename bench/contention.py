"""Decoding on a busy machine: Browser LLM against llama-server with 0, 1 and 2 neighbour
processes spinning on a core each, and a neighbour arriving and leaving mid-generation.

Systems, all serving the default model with 2 threads, up at once:
- Browser LLM (the default: the engine drops threads while other processes hold cores);
- Browser LLM BROWSER_LLM_ADAPTIVE_THREADS=false (always 2 threads: the behaviour before);
- Browser LLM BROWSER_LLM_THREADS=1 (the reference the target is measured against);
- llama-server -t 2 -np 8 (same llama.cpp, same build flags).

Each load (1, 4 or 8 streams of greedy tokens, end-of-sequence ignored) runs on every
system in turn, the order rotating each round, after a second of quiet (the system before
kept both cores busy, which an adaptive engine rightly reacts to). A run lasts until its
tokens are in or its time budget is spent (a collapsed system would take minutes per
request); total tok/s = tokens received / wall time. Neighbours are
`python -c "while True: pass"` processes this script starts and stops by process id.
Then the trace: one long stream per system while a neighbour arrives at 2 s and leaves at
5 s, tok/s per half second.

Usage: .venv/bin/python bench/contention.py [--rounds 2] [--budget 20]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent))

from harness import (
    BrowserLLMTarget,
    LlamaServerTarget,
    Target,
    _parse,
    default_model_path,
)
from llama_server_build import llama_server_binary

PROMPTS = [
    "Write a long story about a lighthouse keeper who finds a message in a bottle.",
    "Describe, step by step, how to bake bread at home.",
    "Explain the history of the printing press in detail.",
    "Write a letter to a friend about a trip to the mountains.",
]


@contextlib.contextmanager
def neighbours(count: int) -> Iterator[list[subprocess.Popen[bytes]]]:
    """`count` processes spinning on a core each, stopped by pid on the way out."""
    procs = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(count)]
    try:
        time.sleep(0.5 if procs else 0)
        yield procs
    finally:
        for proc in procs:
            proc.kill()
            proc.wait()


async def _stream(target: Target, prompt: str, tokens: int, deadline: float) -> list[float]:
    """Arrival times of the tokens of one stream, until done or the deadline."""
    url, body = target.request(prompt, tokens)
    times: list[float] = []
    with contextlib.suppress(httpx.HTTPError, asyncio.TimeoutError):
        async with (
            httpx.AsyncClient(timeout=httpx.Timeout(10, read=None)) as client,
            client.stream("POST", url, json=body) as resp,
        ):
            async with asyncio.timeout_at(asyncio.get_running_loop().time() + deadline):
                async for line in resp.aiter_lines():
                    if _parse(target, line):
                        times.append(time.perf_counter())
    return times


async def run_load(target: Target, streams: int, tokens: int, budget_s: float) -> float:
    start = time.perf_counter()
    got = await asyncio.gather(
        *(
            _stream(target, f"{start:.0f}. {PROMPTS[i % len(PROMPTS)]}", tokens, budget_s)
            for i in range(streams)
        )
    )
    wall = time.perf_counter() - start
    return sum(len(times) for times in got) / wall


async def _threads_over_time(target: Target, seconds: float) -> list[tuple[float, int]]:
    """(time, llama.cpp threads) from /status every 0.1 s: when the engine switched."""
    if not isinstance(target, BrowserLLMTarget):
        return []
    start = time.perf_counter()
    seen: list[tuple[float, int]] = []
    async with httpx.AsyncClient(timeout=5) as client:
        while time.perf_counter() - start < seconds:
            with contextlib.suppress(httpx.HTTPError, KeyError):
                status = await client.get(f"http://127.0.0.1:{target.port}/api/v1/status")
                seen.append(
                    (time.perf_counter() - start, status.json()["data"]["engine"]["threads"])
                )
            await asyncio.sleep(0.1)
    return seen


async def trace(
    target: Target, streams: int, seconds: float, arrive: float, leave: float
) -> tuple[list[float], list[tuple[float, int]]]:
    """Total tok/s of `streams` long streams per half second while a neighbour spins from
    `arrive` to `leave`, and the engine's thread count over time."""
    start = time.perf_counter()
    tasks = [
        asyncio.create_task(_stream(target, PROMPTS[i % len(PROMPTS)], 4000, seconds))
        for i in range(streams)
    ]
    threads = asyncio.create_task(_threads_over_time(target, seconds))
    await asyncio.sleep(arrive)
    spinner = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        await asyncio.sleep(leave - arrive)
    finally:
        spinner.kill()  # by pid: the process this script started
        spinner.wait()
    bins = [0] * int(seconds * 2)
    for times in await asyncio.gather(*tasks):
        for t in times:
            slot = int((t - start) * 2)
            if slot < len(bins):
                bins[slot] += 1
    return [count * 2.0 for count in bins], await threads


def _switches(seen: list[tuple[float, int]]) -> str:
    out, last = [], None
    for at, threads in seen:
        if threads != last:
            out.append(f"{threads} at {at:.2f} s")
            last = threads
    return ", ".join(out) or "-"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--budget", type=float, default=20.0, help="seconds per run at most")
    parser.add_argument("--tokens", type=int, default=64, help="per stream")
    parser.add_argument(
        "--settle", type=float, default=1.0, help="seconds of quiet before each run"
    )
    parser.add_argument("--trace-only", action="store_true", help="only the arrive/leave trace")
    parser.add_argument("--trace-streams", type=int, default=4)
    args = parser.parse_args()
    model, binary = default_model_path(), llama_server_binary()
    fixed = BrowserLLMTarget(threads=2, BROWSER_LLM_ADAPTIVE_THREADS="false")
    fixed.name = "Browser LLM fixed 2 threads"
    one = BrowserLLMTarget(threads=1)
    one.name = "Browser LLM 1 thread"
    targets: list[Target] = [
        BrowserLLMTarget(threads=2),
        fixed,
        one,
        LlamaServerTarget(binary, model, threads=2, parallel=8),
    ]
    plan = [(0, [1, 4, 8]), (1, [1, 8]), (2, [1, 8])]
    totals: dict[tuple[int, int, str], list[float]] = {}
    traces: dict[str, list[float]] = {}
    with contextlib.ExitStack() as stack:
        for target in targets:
            stack.enter_context(target)
            asyncio.run(run_load(target, 1, 16, 30))  # warm-up
        for count, loads in [] if args.trace_only else plan:
            with neighbours(count):
                for round_no in range(args.rounds):
                    shift = round_no % len(targets)
                    for load in loads:
                        for target in targets[shift:] + targets[:shift]:
                            # The system before it kept both cores busy: an adaptive engine
                            # rightly runs on one thread until it sees them free again.
                            time.sleep(args.settle)
                            total = asyncio.run(run_load(target, load, args.tokens, args.budget))
                            totals.setdefault((count, load, target.name), []).append(total)
                            print(
                                f"  {count} neighbours, {load} streams, {target.name}: "
                                f"{total:.1f} tok/s",
                                file=sys.stderr,
                                flush=True,
                            )
        switches: dict[str, str] = {}
        for target in (targets[0], targets[1], targets[3]):
            time.sleep(args.settle)
            bins, seen = asyncio.run(trace(target, args.trace_streams, 8.0, 2.0, 5.0))
            traces[target.name], switches[target.name] = bins, _switches(seen)
    print(
        f"\n{datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {psutil.cpu_count()} cpus, "
        f"{args.tokens} tokens per stream, {args.rounds} rounds, budget {args.budget:.0f} s"
    )
    _print_table(plan, targets, totals, fixed.name, args.trace_only)
    print(
        f"\ntrace: {args.trace_streams} streams, total tok/s per 0.5 s; "
        "a neighbour spins from 2.0 s to 5.0 s"
    )
    print(f"{'t (s)':>6}" + "".join(f"{name:>30}" for name in traces))
    for i in range(16):
        print(f"{i / 2:>6.1f}" + "".join(f"{traces[name][i]:>30.0f}" for name in traces))
    for name, text in switches.items():
        print(f"llama.cpp threads, {name}: {text}")
    return 0


def _print_table(
    plan: list[tuple[int, list[int]]],
    targets: list[Target],
    totals: dict[tuple[int, int, str], list[float]],
    fixed: str,
    skip: bool,
) -> None:
    if skip:
        return
    print(f"{'neighbours':>10}{'streams':>8}  " + "".join(f"{t.name:>30}" for t in targets))
    for count, loads in plan:
        for load in loads:
            row = [statistics.median(totals[(count, load, t.name)]) for t in targets]
            print(f"{count:>10}{load:>8}  " + "".join(f"{v:>30.1f}" for v in row))
    ours, base = targets[0].name, targets[2].name
    print(f"\n{ours} / {base} (target >= 0.8 with a neighbour):")
    for count, loads in plan:
        for load in loads:
            a = statistics.median(totals[(count, load, ours)])
            b = statistics.median(totals[(count, load, base)])
            print(f"  {count} neighbours, {load} streams: {a / b:.2f}x")
    print(f"\n{ours} / {fixed} on the quiet machine (target >= 0.97):")
    for load in plan[0][1]:
        a = statistics.median(totals[(0, load, ours)])
        b = statistics.median(totals[(0, load, fixed)])
        print(f"  {load} streams: {a / b:.2f}x")


if __name__ == "__main__":
    sys.exit(main())
