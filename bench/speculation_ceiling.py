"""The ceiling of speculative decoding on this machine: the cost of one llama_decode
call that verifies k tokens of one sequence (k = 1..16 rows at consecutive positions,
logits on each), relative to the same call with one row, alone and beside 4 and 8
other streams that decode one token each. Runs the engine's own LlamaModel (one KV
stream per sequence, the server's context settings), no server.

If verifying k rows costs c(k) steps and a draft of k-1 tokens is accepted in full,
one call yields k tokens: k / c(k) is the best speed-up a draft of that length can give.

Usage:

    flock /tmp/bench.lock .venv/bin/python bench/speculation_ceiling.py
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import llama_cpp

sys.path.insert(0, str(Path(__file__).resolve().parent))

from browser_llm.engine.config import ContextConfig
from browser_llm.engine.native.model import LlamaModel
from harness import default_model_path

PASSAGE = (
    "The lighthouse stood at the end of a long stone pier, and every evening the keeper "
    "climbed its one hundred and twelve steps to light the lamp. "
) * 8


def _put(batch: object, i: int, token: int, pos: int, seq_id: int) -> None:
    b = batch  # the llama_batch's arrays
    b.token[i] = token  # type: ignore[attr-defined]
    b.pos[i] = pos  # type: ignore[attr-defined]
    b.n_seq_id[i] = 1  # type: ignore[attr-defined]
    b.seq_id[i][0] = seq_id  # type: ignore[attr-defined]
    b.logits[i] = True  # type: ignore[attr-defined]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--max-k", type=int, default=16)
    parser.add_argument("--others", type=int, nargs="+", default=[0, 4, 8])
    parser.add_argument("--reps", type=int, default=15)
    args = parser.parse_args()
    streams = max(args.others) + 1
    config = ContextConfig(
        context_size=1024, batch_size=512, threads=args.threads, gpu_layers=0,
        max_sequences=streams,
    )  # fmt: skip
    model = LlamaModel("bench", str(default_model_path()), config)
    prompt = model.tokenize(PASSAGE, add_special=True)[:200]
    memory = llama_cpp.llama_get_memory(model.ctx)
    batch = model.batch
    for seq in range(streams):  # each sequence holds the same 200-token prompt
        for i, token in enumerate(prompt):
            _put(batch, i, token, i, seq)
        batch.n_tokens = len(prompt)
        assert llama_cpp.llama_decode(model.ctx, batch) == 0
    n0 = len(prompt)

    def timed(k: int, others: int) -> float:
        n = 0
        for j in range(k):  # the verified sequence: k rows
            _put(batch, n, prompt[j], n0 + j, 0)
            n += 1
        for seq in range(1, others + 1):  # the others: one row each
            _put(batch, n, prompt[seq], n0, seq)
            n += 1
        batch.n_tokens = n
        start = time.perf_counter()
        assert llama_cpp.llama_decode(model.ctx, batch) == 0
        took = time.perf_counter() - start
        for seq in range(others + 1):  # back to the prompt alone
            llama_cpp.llama_memory_seq_rm(memory, seq, n0, -1)
        return took

    print(f"{args.threads} threads, fastest of {args.reps} reps per cell, prompt {n0} tokens")
    header = f"{'k rows':>7}" + "".join(f"{f'+{o} streams':>22}" for o in args.others)
    print(header)
    print(f"{'':>7}" + "".join(f"{'ms':>8}{'cost':>7}{'k/cost':>7}" for _ in args.others))
    base: dict[int, float] = {}
    for k in range(1, args.max_k + 1):
        cells = []
        for others in args.others:
            timed(k, others)  # warm
            # The fastest of the repeats: the kernels' own cost, without the time slices
            # other processes on a shared machine take (2 threads barely tolerate them).
            ms = min(timed(k, others) for _ in range(args.reps)) * 1000
            if k == 1:
                base[others] = ms
            cost = ms / base[others]
            # Tokens per call: the others' one each plus k for the verified sequence,
            # against others + 1 without speculation at the 1-row cost.
            gain = ((others + k) / ms) / ((others + 1) / base[others])
            cells.append(f"{ms:>8.2f}{cost:>7.2f}{gain:>7.2f}")
        print(f"{k:>7}" + "".join(cells))
    print("cost: the call's time / the same call with 1 row; k/cost: tokens per second")
    print("if the whole draft is accepted, relative to no speculation (all streams counted)")
    model.free()
    return 0


if __name__ == "__main__":
    sys.exit(main())
