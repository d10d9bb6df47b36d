"""Browser LLM now against Browser LLM at an earlier commit, with llama-server -np 8 beside
them: did a change (a refactor, a new feature on the hot path) cost speed?

The earlier commit is checked out into a temporary git worktree and served by this
checkout's interpreter with that tree's sources first on PYTHONPATH (the dependencies are
this checkout's: compare commits whose pins agree). Streams as in bench/multi_stream.py
(128 greedy tokens each, a different prompt per stream); all three servers up at once;
each load runs on every system in turn, the order rotating each round after a second of
quiet; ratios are medians of the rounds' paired ratios.

Usage: .venv/bin/python bench/versus_commit.py 55ebd8d [--loads 1 8] [--rounds 4]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from harness import BrowserLLMTarget, LlamaServerTarget, Target, default_model_path
from llama_server_build import llama_server_binary
from multi_stream import interleaved, run_load

ROOT = Path(__file__).resolve().parent.parent


@contextlib.contextmanager
def worktree(rev: str) -> Iterator[Path]:
    """`rev` checked out (detached) in a temporary folder, removed afterwards."""
    with tempfile.TemporaryDirectory(prefix="browser-llm-versus-") as tmp:
        path = Path(tmp) / "tree"
        subprocess.run(
            ["git", "-C", str(ROOT), "worktree", "add", "--detach", str(path), rev],
            check=True,
            capture_output=True,
        )
        try:
            yield path
        finally:
            subprocess.run(
                ["git", "-C", str(ROOT), "worktree", "remove", "--force", str(path)],
                check=False,
                capture_output=True,
            )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("rev", help="the earlier commit (any git revision)")
    parser.add_argument("--loads", type=int, nargs="+", default=[1, 8])
    parser.add_argument("--tokens", type=int, default=128)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=4)
    args = parser.parse_args()
    with worktree(args.rev) as tree:
        now = BrowserLLMTarget(threads=args.threads)
        now.name = "Browser LLM now"
        then = BrowserLLMTarget(threads=args.threads, PYTHONPATH=str(tree / "src"))
        then.name = f"Browser LLM {args.rev}"
        peer = LlamaServerTarget(
            llama_server_binary(), default_model_path(), threads=args.threads, parallel=8
        )
        targets: list[Target] = [now, then, peer]
        totals: dict[tuple[str, int], list[float]] = {}
        with contextlib.ExitStack() as stack:
            for target in targets:
                stack.enter_context(target)
                asyncio.run(run_load(target, 1, 16))  # warm-up, not counted
            runs = interleaved(targets, args.loads, args.rounds, args.tokens)
            for load, results in runs:
                for target, _, total in results:
                    totals.setdefault((target.name, load), []).append(total)
                    print(f"{load} streams {target.name}: {total:.1f} tok/s")
    print(f"\n{args.tokens} tokens per stream, {args.threads} threads, {args.rounds} rounds")
    for load in args.loads:
        for target in targets:
            median = statistics.median(totals[(target.name, load)])
            print(f"{target.name:<28}{load:>3} streams: total {median:6.1f} tok/s (median)")
        for a, b in [(now, then), (now, peer), (then, peer)]:
            ours, theirs = totals[(a.name, load)], totals[(b.name, load)]
            pairs = [x / y for x, y in zip(ours, theirs, strict=True)]
            rounds = ", ".join(f"{p:.2f}" for p in pairs)
            print(f"  {a.name} / {b.name}: {statistics.median(pairs):.2f}x (rounds {rounds})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
