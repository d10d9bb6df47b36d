"""One stream of 128 tokens: Browser LLM against llama.cpp's own llama-server.

Same model file, same threads, same prompt, greedy, end-of-sequence ignored,
measured from the client over streaming HTTP. Prints decode tok/s, time to
first token and the ratios. Usage:

    .venv/bin/python bench/single_stream.py [--runs 5] [--tokens 128] [--threads 2]
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from harness import (
    PROMPT,
    BrowserLLMTarget,
    LlamaServerTarget,
    Sample,
    default_model_path,
    measure_stream,
)
from llama_server_build import llama_server_binary


def _median(samples: list[Sample], attr: str) -> float:
    return statistics.median(getattr(s, attr) for s in samples)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--tokens", type=int, default=128)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    model = default_model_path()
    binary = llama_server_binary()
    targets = [
        BrowserLLMTarget(threads=args.threads),
        LlamaServerTarget(binary, model, threads=args.threads, parallel=1),
    ]
    results: dict[str, list[Sample]] = {t.name: [] for t in targets}
    with targets[0], targets[1]:
        for target in targets:
            measure_stream(target, PROMPT, args.tokens)  # warm-up, not counted
        # Alternate the two servers run by run, so drift in the machine's
        # speed (a shared VM is noisy) hits both alike.
        for _ in range(args.runs):
            for target in targets:
                results[target.name].append(measure_stream(target, PROMPT, args.tokens))
    ours = results[targets[0].name]
    peer = results[targets[1].name]
    print(
        f"\nSingle stream, {args.tokens} tokens, {args.threads} threads, {args.runs} runs (median)"
    )
    print(f"{'system':<28}{'decode tok/s':>14}{'first token ms':>16}")
    for name, samples in results.items():
        print(
            f"{name:<28}{_median(samples, 'decode_tps'):>14.1f}{_median(samples, 'ttft_ms'):>16.1f}"
        )
    decode_ratio = _median(ours, "decode_tps") / _median(peer, "decode_tps")
    ttft_ratio = _median(ours, "ttft_ms") / _median(peer, "ttft_ms")
    print(f"{'ratio (ours / llama-server)':<28}{decode_ratio:>13.2f}x{ttft_ratio:>15.2f}x")
    print("targets: decode >= 0.95x, first token <= 1.2x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
