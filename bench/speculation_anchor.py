"""Browser LLM's speculation against llama-server's own n-gram speculation, on the
grounded prompts of bench/speculation.py (same prompts, same requests, same decode tok/s
as each server reports it; chat requests: Browser LLM's /api/v1/generate with a prompt,
llama-server's /v1/chat/completions, both with the model's chat template).

Targets: Browser LLM with speculation on and off (parallel 8), and the vendored
llama-server (bench/llama_server_build.py) without speculation and with each of its
n-gram modes (`--spec-type ngram-simple | ngram-map-k | ngram-mod | ngram-cache`, their
default sizes), `-np 1` for 1 stream and `-np 8` for 8 streams. Every (temperature,
streams, kind) cell runs on every target in turn, the order rotating from cell to cell
and round to round (as bench/multi_stream.py's `interleaved`), so a drift in the
machine's speed is shared. Per cell it prints each target's median over rounds,
llama-server's best configuration for that kind (the anchor), and Browser LLM on and off
over that anchor.

Usage:

    flock /tmp/bench.lock .venv/bin/python bench/speculation_anchor.py --short [--rounds 2]
"""

from __future__ import annotations

import asyncio
import contextlib
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from grounded_prompts import KINDS, grounded_prompts
from harness import BrowserLLMTarget, LlamaServerTarget, Target, default_model_path
from llama_server_build import llama_server_binary
from speculation import grounded_arguments, run_cell

SPEC_TYPES = ("none", "ngram-simple", "ngram-map-k", "ngram-mod", "ngram-cache")
CTX_PER_SLOT = 2048  # the longest grounded prompt (~700 tokens) and its answer fit


def _peers(threads: int, load: int) -> list[LlamaServerTarget]:
    binary, model = llama_server_binary(), default_model_path()
    peers = []
    for spec in SPEC_TYPES:
        extra = () if spec == "none" else ("--spec-type", spec)
        peer = LlamaServerTarget(binary, model, threads, load, extra, CTX_PER_SLOT)
        peer.name = f"llama-server {spec}"
        peers.append(peer)
    return peers


def main() -> int:
    args = grounded_arguments(__doc__).parse_args()
    prompts = grounded_prompts(args.short)
    by_kind = {k: [p for kind, p in prompts if kind == k] for k in KINDS}
    on = BrowserLLMTarget(threads=args.threads, parallel=8, BROWSER_LLM_SPECULATION="true")
    off = BrowserLLMTarget(threads=args.threads, parallel=8, BROWSER_LLM_SPECULATION="false")
    on.name, off.name = "Browser LLM spec on", "Browser LLM spec off"
    speeds: dict[tuple[str, float, int, str], list[float]] = {}
    started = time.perf_counter()
    with contextlib.ExitStack() as ours:
        for target in (on, off):
            ours.enter_context(target)
            asyncio.run(run_cell(target, [prompts[0][1]], 1, 16, 0.0))  # warm-up
        for load in args.loads:
            peers = _peers(args.threads, load)
            with contextlib.ExitStack() as theirs:
                for peer in peers:
                    theirs.enter_context(peer)
                    asyncio.run(run_cell(peer, [prompts[0][1]], 1, 16, 0.0))
                targets: list[Target] = [on, off, *peers]
                cell = 0
                for _ in range(args.rounds):
                    for temp in args.temps:
                        for kind in KINDS:
                            shift = cell % len(targets)
                            cell += 1
                            for target in targets[shift:] + targets[:shift]:
                                time.sleep(0.5)
                                rate, _ = asyncio.run(
                                    run_cell(target, by_kind[kind], load, args.tokens, temp)
                                )
                                key = (target.name, temp, load, kind)
                                speeds.setdefault(key, []).append(rate)
    names = [on.name, off.name, *(f"llama-server {spec}" for spec in SPEC_TYPES)]
    print(
        f"\n{args.rounds} rounds, {args.tokens} tokens max, {args.threads} threads, "
        f"{len(prompts)} {'short ' if args.short else ''}prompts ({len(KINDS)} kinds x 8), "
        f"{time.perf_counter() - started:.0f} s; decode tok/s, median over rounds"
    )
    short = ["ours on", "ours off", *(s.removeprefix("ngram-") for s in SPEC_TYPES)]
    print(
        f"{'temp':>5}{'streams':>8}  {'kind':<10}"
        + "".join(f"{s:>10}" for s in short)
        + f"  {'best llama-server':<18}{'on/best':>8}{'off/best':>9}"
    )
    summary: dict[tuple[float, int], list[tuple[float, float]]] = {}
    for temp in args.temps:
        for load in args.loads:
            for kind in KINDS:
                med = {n: statistics.median(speeds[(n, temp, load, kind)]) for n in names}
                best = max(names[2:], key=lambda n: med[n])
                r_on, r_off = med[on.name] / med[best], med[off.name] / med[best]
                summary.setdefault((temp, load), []).append((r_on, r_off))
                print(
                    f"{temp:>5.1f}{load:>8}  {kind:<10}"
                    + "".join(f"{med[n]:>10.1f}" for n in names)
                    + f"  {best.removeprefix('llama-server '):<18}{r_on:>8.2f}{r_off:>9.2f}"
                )
    for (temp, load), pairs in summary.items():
        print(
            f"temp {temp} {load} streams: median of kinds' on/best "
            f"{statistics.median(p[0] for p in pairs):.2f}, off/best "
            f"{statistics.median(p[1] for p in pairs):.2f}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
