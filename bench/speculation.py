"""Speculative decoding on grounded tasks: Browser LLM with speculation on against the
same build with it off (BROWSER_LLM_SPECULATION=false), on a fixed set of 32 prompts of
four kinds (bench/grounded_prompts.py), greedy and temperature 0.7 (seeded), 1 and 8
streams. Both servers run at once; each (temperature, streams, kind) cell runs on both
in turn, the order alternating, round after round; the figure is the median over
rounds of the paired ratio on/off. Decode tok/s is the server's own (first token to
last, as /generate reports it): at 1 stream tokens over decode time summed over the
prompts, at 8 streams the sum of the concurrent streams' rates. The acceptance rate per
kind comes from /status (engine.speculation) on the speculating server.

bench/speculation_ceiling.py gives the ceiling these figures are to be read against.

Usage:

    flock /tmp/bench.lock .venv/bin/python bench/speculation.py [--rounds 2] [--tokens 96]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import statistics
import sys
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))

from grounded_prompts import COPY, KINDS, copy_prompts, grounded_prompts
from harness import BrowserLLMTarget, LlamaServerTarget, Target


async def _one(
    client: httpx.AsyncClient, target: Target, prompt: str, tokens: int, temp: float, seed: int
) -> tuple[str, int, float]:
    """One chat request: its text, and its decode tokens after the first and their
    seconds, as the server itself reports them."""
    if isinstance(target, LlamaServerTarget):
        body = {
            "messages": [{"role": "user", "content": prompt}],
            "max_tokens": tokens,
            "temperature": temp,
            "seed": seed,
        }
        resp = await client.post(f"http://127.0.0.1:{target.port}/v1/chat/completions", json=body)
        resp.raise_for_status()
        got = resp.json()
        timings = got["timings"]
        # predicted_ms runs from the first token to the last: predicted_n - 1 intervals.
        n = int(timings["predicted_n"]) - 1
        return got["choices"][0]["message"]["content"], n, float(timings["predicted_ms"]) / 1000
    body = {"prompt": prompt, "max_tokens": tokens, "temperature": temp, "seed": seed}
    resp = await client.post(f"http://127.0.0.1:{target.port}/api/v1/generate", json=body)
    resp.raise_for_status()
    data = resp.json()["data"]
    tps = float(data["performance"]["tokens_per_second"])
    n = int(data["tokens"]) - 1
    return data["text"], n, (n / tps if n > 0 and tps > 0 else 0.0)


async def run_cell(
    target: Target, prompts: list[str], streams: int, tokens: int, temp: float
) -> tuple[float, list[str]]:
    """Decode tok/s of `prompts` run `streams` at a time, and the texts: at 1 stream
    tokens over decode seconds summed over the prompts, else the mean over groups of
    the sum of the concurrent streams' rates."""
    texts: list[str] = []
    groups: list[float] = []
    n_tokens = 0
    seconds = 0.0
    async with httpx.AsyncClient(timeout=600) as client:
        for start in range(0, len(prompts), streams):
            group = prompts[start : start + streams]
            got = await asyncio.gather(
                *(_one(client, target, p, tokens, temp, 7 + i) for i, p in enumerate(group, start))
            )
            total = 0.0
            for text, n, s in got:
                texts.append(text)
                if n > 0 and s > 0:
                    n_tokens += n
                    seconds += s
                    total += n / s
            groups.append(total)
    if streams == 1:
        return n_tokens / seconds, texts
    return statistics.mean(groups), texts


def _speculation(target: BrowserLLMTarget) -> tuple[int, int]:
    status = httpx.get(f"http://127.0.0.1:{target.port}/api/v1/status", timeout=30).json()
    spec = status["data"]["engine"]["speculation"]
    return int(spec["draft_tokens"]), int(spec["accepted"])


def grounded_arguments(description: str | None) -> argparse.ArgumentParser:
    """The options of a run over the grounded prompts (this script, speculation_anchor.py)."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--tokens", type=int, default=96)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--loads", type=int, nargs="+", default=[1, 8])
    parser.add_argument("--temps", type=float, nargs="+", default=[0.0, 0.7])
    parser.add_argument(
        "--short", action="store_true", help="passages and functions cut to ~110-200 tokens"
    )
    return parser


def main() -> int:
    parser = grounded_arguments(__doc__)
    parser.add_argument(
        "--same",
        action="store_true",
        help="both servers with speculation off: the harness's own spread (an A/A run)",
    )
    parser.add_argument(
        "--copy", action="store_true", help="a fifth kind: repeat the passage word for word"
    )
    args = parser.parse_args()
    prompts = grounded_prompts(args.short)
    kinds = KINDS
    if args.copy:
        prompts += copy_prompts(args.short)
        kinds = (*KINDS, COPY)
    by_kind = {k: [p for kind, p in prompts if kind == k] for k in kinds}
    first = "false" if args.same else "true"
    on = BrowserLLMTarget(threads=args.threads, parallel=8, BROWSER_LLM_SPECULATION=first)
    off = BrowserLLMTarget(threads=args.threads, parallel=8, BROWSER_LLM_SPECULATION="false")
    on.name, off.name = "speculation on", "speculation off"
    ratios: dict[tuple[float, int, str], list[float]] = {}
    speeds: dict[tuple[str, float, int, str], list[float]] = {}
    accept: dict[tuple[float, int, str], list[int]] = {}
    differ: dict[tuple[float, int, str], int] = {}
    started = time.perf_counter()
    cell = 0  # cells run so far: the order of the two servers alternates by it
    with contextlib.ExitStack() as stack:
        for target in (on, off):
            stack.enter_context(target)
            asyncio.run(run_cell(target, [prompts[0][1]], 1, 16, 0.0))  # warm-up
        for round_no in range(args.rounds):
            for temp in args.temps:
                for load in args.loads:
                    for kind in kinds:
                        key = (temp, load, kind)
                        cell += 1
                        order = (on, off) if (round_no + cell) % 2 == 0 else (off, on)
                        result: dict[str, tuple[float, list[str]]] = {}
                        for target in order:
                            time.sleep(0.5)
                            before = _speculation(on)
                            result[target.name] = asyncio.run(
                                run_cell(target, by_kind[kind], load, args.tokens, temp)
                            )
                            if target is on:
                                after = _speculation(on)
                                got = accept.setdefault(key, [0, 0])
                                got[0] += after[0] - before[0]
                                got[1] += after[1] - before[1]
                        r_on, t_on = result[on.name]
                        r_off, t_off = result[off.name]
                        ratios.setdefault(key, []).append(r_on / r_off)
                        speeds.setdefault((on.name, *key), []).append(r_on)
                        speeds.setdefault((off.name, *key), []).append(r_off)
                        differ[key] = differ.get(key, 0) + sum(
                            a != b for a, b in zip(t_on, t_off, strict=True)
                        )
    print(
        f"\n{args.rounds} rounds, {args.tokens} tokens max, {args.threads} threads, "
        f"{len(prompts)} {'short ' if args.short else ''}prompts ({len(kinds)} kinds x 8), "
        f"{time.perf_counter() - started:.0f} s"
    )
    print(
        f"{'temp':>5}{'streams':>8}  {'kind':<10}{'on tok/s':>10}{'off tok/s':>10}"
        f"{'on/off':>8}  {'rounds':<18}{'accepted':>10}{'drafted':>9}{'rate':>6}{'differ':>7}"
    )
    for (temp, load, kind), rs in ratios.items():
        key = (temp, load, kind)
        a, d = accept[key][1], accept[key][0]
        print(
            f"{temp:>5.1f}{load:>8}  {kind:<10}"
            f"{statistics.median(speeds[(on.name, *key)]):>10.1f}"
            f"{statistics.median(speeds[(off.name, *key)]):>10.1f}"
            f"{statistics.median(rs):>8.2f}  {', '.join(f'{r:.2f}' for r in rs):<18}"
            f"{a:>10}{d:>9}{(a / d if d else 0):>6.2f}{differ[key]:>7}"
        )
    for temp in args.temps:
        for load in args.loads:
            allr = [
                statistics.median(rs) for (t, n, _), rs in ratios.items() if (t, n) == (temp, load)
            ]
            print(
                f"temp {temp} {load} streams: median of kinds' on/off {statistics.median(allr):.2f}"
            )
    print("differ: outputs (of 8 per cell, summed over rounds) whose text differs on/off")
    return 0


if __name__ == "__main__":
    sys.exit(main())
