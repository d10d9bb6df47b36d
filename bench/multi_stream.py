"""Many streams at once: Browser LLM against llama-server (-np 1, -np 8) and
llama-cpp-python's own server, at 1, 4 and 8 concurrent streams.

Every system serves the same model file with 2 threads; each stream asks for
128 tokens (greedy, end-of-sequence ignored, a different prompt per stream).
All servers run at once; each load runs on every system in turn, round after
round, so drift in the machine's speed is shared. Each round and load gets prompts
no server has seen (a numbered first word), so no prompt cache helps anyone.
llama.cpp's llama-batched-bench runs the same shapes with no server at all
(one process, one context, prompts then 128 steps): the ceiling of llama.cpp's own
kernels. Browser LLM's build multiplies Q4_1 weights against several tokens at once
(patches/llama-cpp-python/), so with more than one stream it passes that ceiling.
"Browser LLM in-process" (BROWSER_LLM_ENGINE_PROCESS=false) is the A/B for the cost
of the engine process boundary.
Usage:

    make bench        # or: .venv/bin/python bench/multi_stream.py [--loads 1 4 8]
    .venv/bin/python bench/multi_stream.py --ab BROWSER_LLM_SPECULATION=true   # A/B a setting
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import platform
import re
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent))

from harness import (
    BrowserLLMTarget,
    LlamaCppPythonTarget,
    LlamaServerTarget,
    Sample,
    Target,
    default_model_path,
    measure_stream_async,
)
from llama_server_build import llama_batched_bench_binary, llama_server_binary

PROMPTS = [
    "Write a long story about a lighthouse keeper who finds a message in a bottle.",
    "Describe, step by step, how to bake bread at home.",
    "Explain the history of the printing press in detail.",
    "Write a letter to a friend about a trip to the mountains.",
    "Describe a busy market in a coastal town at dawn.",
    "Explain how a bicycle works, part by part.",
    "Tell the story of a robot that learns to paint.",
    "Describe the life cycle of a star from birth to death.",
]


class PeakRSS:
    """Samples the resident memory of a process tree every 50 ms."""

    def __init__(self, pid: int) -> None:
        self._proc = psutil.Process(pid)
        self.peak = 0
        self.peak_root = 0  # the server process alone (without its engine process)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _rss(self) -> tuple[int, int]:
        """(the whole tree, the first process alone)."""
        root = children = 0
        with contextlib.suppress(psutil.Error):
            root = self._proc.memory_info().rss
            for child in self._proc.children(recursive=True):
                with contextlib.suppress(psutil.Error):  # a child may have just exited
                    children += child.memory_info().rss
        return root + children, root

    def _run(self) -> None:
        while not self._stop.is_set():
            total, root = self._rss()
            self.peak = max(self.peak, total)
            self.peak_root = max(self.peak_root, root)
            time.sleep(0.05)

    def __enter__(self) -> PeakRSS:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


CEILING = "llama-batched-bench"
PROMPT_TOKENS = 16  # about what the prompts above tokenize to, for the ceiling run


def kernel_ceiling(model: Path, threads: int, streams: int, tokens: int) -> float:
    """Generated tok/s of llama-batched-bench: `streams` prompts, then `tokens` steps of
    one token per stream, one KV stream per sequence as in both servers; prompt time
    counts, as in the servers' totals."""
    out = subprocess.run(
        [
            str(llama_batched_bench_binary()),
            *("-m", str(model), "-c", str(4096 * max(streams, 1)), "-b", "512", "-ub", "512"),
            *("-npp", str(PROMPT_TOKENS), "-ntg", str(tokens), "-npl", str(streams)),
            *("-t", str(threads), "-tb", str(threads), "-no-kvu"),
        ],
        capture_output=True,
        text=True,
        check=True,
        timeout=600,
    ).stdout
    # | PP | TG | B | N_KV | T_PP s | S_PP t/s | T_TG s | S_TG t/s | T s | S t/s |
    row = next(line for line in out.splitlines() if re.match(r"\|\s+\d", line))
    seconds = float(row.split("|")[9])
    return streams * tokens / seconds


async def run_load(
    target: Target, streams: int, tokens: int, salt: str = ""
) -> tuple[list[Sample], float]:
    start = time.perf_counter()
    samples = await asyncio.gather(
        *(
            measure_stream_async(target, f"{salt}{PROMPTS[i % len(PROMPTS)]}", tokens)
            for i in range(streams)
        )
    )
    wall = time.perf_counter() - start
    return list(samples), sum(s.tokens for s in samples) / wall


def interleaved(
    targets: list[Target], loads: list[int], rounds: int, tokens: int
) -> Iterator[tuple[int, list[tuple[Target, list[Sample], float]]]]:
    """Each load on every target in turn, round after round: (load, [(target, samples, total
    tok/s)]) per round and load. Round-robin, so drift in the machine's speed is shared by
    all of them; the order rotates every round so that no system always runs first."""
    for round_no in range(rounds):
        shift = round_no % len(targets)
        for load in loads:
            salt = f"{round_no * 100 + load}. "  # a first token no cache holds
            results = []
            for target in targets[shift:] + targets[:shift]:
                # A second of quiet: the system before kept both cores busy, and the
                # engine rightly runs on fewer threads until it sees them free again.
                time.sleep(1.0)
                got, total = asyncio.run(run_load(target, load, tokens, salt))
                results.append((target, got, total))
            yield load, results


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--loads", type=int, nargs="+", default=[1, 4, 8])
    parser.add_argument("--tokens", type=int, default=128)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=4, help="repeats of each load")
    parser.add_argument(
        "--ab",
        metavar="KEY=VALUE",
        action="append",
        default=[],
        help="also run Browser LLM with this setting (e.g. BROWSER_LLM_SPECULATION=true)",
    )
    args = parser.parse_args()
    model, binary = default_model_path(), llama_server_binary()
    in_process = BrowserLLMTarget(threads=args.threads, BROWSER_LLM_ENGINE_PROCESS="false")
    in_process.name = "Browser LLM in-process"  # A/B: llama.cpp inside the server process
    targets: list[Target] = [
        BrowserLLMTarget(threads=args.threads),
        in_process,
        LlamaServerTarget(binary, model, threads=args.threads, parallel=1),
        LlamaServerTarget(binary, model, threads=args.threads, parallel=8),
        LlamaCppPythonTarget(model, threads=args.threads),
    ]
    for setting in args.ab:
        key, _, value = setting.partition("=")
        targets.insert(2, BrowserLLMTarget(threads=args.threads, **{key: value}))
    samples: dict[tuple[str, int], list[Sample]] = {}
    totals: dict[tuple[str, int], list[float]] = {}
    peaks: dict[str, PeakRSS] = {}
    with contextlib.ExitStack() as stack:
        for target in targets:  # all up at once: an idle server costs the others nothing
            stack.enter_context(target)
            peaks[target.name] = stack.enter_context(PeakRSS(target.pid))
            asyncio.run(run_load(target, 1, 16))  # warm-up, not counted
        for load, results in interleaved(targets, args.loads, args.rounds, args.tokens):
            for target, got, total in results:
                samples.setdefault((target.name, load), []).extend(got)
                totals.setdefault((target.name, load), []).append(total)
            ceiling = kernel_ceiling(model, args.threads, load, args.tokens)
            totals.setdefault((CEILING, load), []).append(ceiling)
    rows: dict[tuple[str, int], dict[str, float]] = {}
    for (name, load), got in samples.items():  # servers; the ceiling has totals only
        ok = [s for s in got if not s.failed] or got
        ttfts = [s.ttft_ms for s in ok]
        rows[(name, load)] = {
            "ttft_p50": pct(ttfts, 0.5),
            "ttft_p95": pct(ttfts, 0.95),
            "decode": statistics.median(s.decode_tps for s in ok),
            "total": statistics.median(totals[(name, load)]),
            "failed": sum(s.failed for s in got),
            "rss_mb": peaks[name].peak / 2**20,
        }
    print(
        f"\n{date.today()} {platform.machine()} {psutil.cpu_count()} cpus, "
        f"{args.tokens} tokens per stream, {args.threads} threads, {args.rounds} rounds"
    )
    header = f"{'system':<24}{'streams':>8}{'ttft p50':>10}{'ttft p95':>10}"
    header += f"{'tok/s/stream':>14}{'total tok/s':>13}{'peak RSS MB':>13}{'failed':>8}"
    print(header)
    for (name, load), r in rows.items():
        print(
            f"{name:<24}{load:>8}{r['ttft_p50']:>10.0f}{r['ttft_p95']:>10.0f}"
            f"{r['decode']:>14.1f}{r['total']:>13.1f}{r['rss_mb']:>13.0f}"
        )
    ceilings = {load: statistics.median(totals[(CEILING, load)]) for load in args.loads}
    for load, total in ceilings.items():
        print(f"{CEILING + ' (no server)':<24}{load:>8}{'-':>10}{'-':>10}{'-':>14}{total:>13.1f}")
    print("\npeak RSS MB: whole process tree / the server process alone")
    for target in targets:
        peak = peaks[target.name]
        print(f"  {target.name:<24}{peak.peak / 2**20:>8.0f} / {peak.peak_root / 2**20:.0f}")
    ours = targets[0].name
    print("\nshare of llama.cpp's kernel ceiling (total tok/s / llama-batched-bench's)")
    for target in targets:
        shares = ", ".join(
            f"{load} streams {rows[(target.name, load)]['total'] / ceilings[load]:.2f}"
            for load in args.loads
        )
        print(f"  {target.name:<24}{shares}")
    print("\nratios, Browser LLM / peer (total: median of the rounds' paired ratios)")
    for target in targets[1:]:
        for load in args.loads:
            a, b = rows[(ours, load)], rows[(target.name, load)]
            pairs = zip(totals[(ours, load)], totals[(target.name, load)], strict=True)
            paired = statistics.median(x / y for x, y in pairs)
            print(
                f"vs {target.name:<22}{load:>3} streams: total {paired:.2f}x, "
                f"decode/stream {a['decode'] / b['decode']:.2f}x, "
                f"ttft p50 {a['ttft_p50'] / b['ttft_p50']:.2f}x, "
                f"RSS {a['rss_mb'] / b['rss_mb']:.2f}x"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
