"""Embeddings: their own speed, and what they cost running generations.

One Browser LLM server (2 threads, default model). Prints:
- embedding throughput: texts/s and tokens/s for batches of 16 texts of ~60 tokens;
- decode tok/s of 4 greedy streams (128 tokens) alone, then with a client sending
  embedding batches back to back the whole time: the ratio is what embeddings cost
  generation (one text is decoded between two decode steps).

Usage: .venv/bin/python bench/embeddings.py [--rounds 3]
"""

from __future__ import annotations

import argparse
import concurrent.futures
import statistics
import sys
import threading
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))

from harness import BrowserLLMTarget, measure_stream

TEXT = (
    "The river ran past the old mill, where the miller's daughter counted sacks of grain "
    "while the wheel turned slowly in the brown water of late autumn, number {i}."
)


def embed_batch(base: str, n: int, offset: int) -> int:
    texts = [TEXT.format(i=offset + k) for k in range(n)]
    resp = httpx.post(f"{base}/embeddings", json={"input": texts}, timeout=300)
    resp.raise_for_status()
    return int(resp.json()["usage"]["prompt_tokens"])


def streams_tok_s(target: BrowserLLMTarget, streams: int, tokens: int) -> float:
    with concurrent.futures.ThreadPoolExecutor(streams) as pool:
        started = time.perf_counter()
        samples = list(
            pool.map(
                lambda i: measure_stream(target, f"{i}. Tell a long story.", tokens), range(streams)
            )
        )
        wall = time.perf_counter() - started
    return sum(s.tokens for s in samples) / wall


def streams_with_embeddings(target: BrowserLLMTarget, base: str) -> tuple[float, int]:
    """4 streams' tok/s while another client embeds 4-text batches back to back."""
    stop = threading.Event()
    sent = [0]

    def keep_embedding() -> None:
        while not stop.is_set():
            embed_batch(base, 4, 1000 + sent[0])
            sent[0] += 4

    worker = threading.Thread(target=keep_embedding)
    worker.start()
    try:
        return streams_tok_s(target, 4, 128), sent[0]
    finally:
        stop.set()
        worker.join()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    with BrowserLLMTarget(threads=2, parallel=4) as target:
        base = f"http://127.0.0.1:{target.port}/v1"
        embed_batch(base, 2, 0)  # makes the embedding context
        rates, token_rates = [], []
        for r in range(args.rounds):
            started = time.perf_counter()
            tokens = embed_batch(base, 16, 100 * r)
            took = time.perf_counter() - started
            rates.append(16 / took)
            token_rates.append(tokens / took)
        print(
            f"embeddings alone: {statistics.median(rates):.1f} texts/s, "
            f"{statistics.median(token_rates):.0f} tokens/s (16 texts of ~{tokens // 16} tokens)"
        )
        alone, busy, sent = [], [], 0
        for _ in range(args.rounds):
            time.sleep(1)
            alone.append(streams_tok_s(target, 4, 128))
            time.sleep(1)
            rate, sent = streams_with_embeddings(target, base)
            busy.append(rate)
        a, b = statistics.median(alone), statistics.median(busy)
        print(
            f"4 streams alone: {a:.1f} tok/s; with embeddings running: {b:.1f} tok/s ({b / a:.2f}x)"
        )
        print(f"texts embedded meanwhile: {sent} in the last round")
    return 0


if __name__ == "__main__":
    sys.exit(main())
