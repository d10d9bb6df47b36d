"""What one engine step decodes, and writing it into a llama_batch.

A step is at most two llama_decode calls. Call 1: one token for every decoding
sequence (followed by its draft tokens when it speculates), plus chunks of short
prompts (below TILE_ROWS every micro-batch shape computes them the same way).
Call 2: one chunk of the oldest long prompt, alone, of at least TILE_ROWS tokens
(its last chunk too), so each of its tokens goes through the flash-attention
kernel a lone read would use and batching never changes an output (see engine/native/kv/slots.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from browser_llm.engine.native.kv.slots import TILE_ROWS
from browser_llm.engine.native.sequence import Sequence

__all__ = ["Chunk", "StepPlan", "fill", "plan_step"]


@dataclass(frozen=True)
class Chunk:
    """`count` prompt tokens of `seq`, from prompt index `start`."""

    seq: Sequence
    start: int
    count: int


@dataclass(frozen=True)
class StepPlan:
    decoding: list[Sequence]  # one pending token each, in call 1
    short: list[Chunk]  # short-prompt chunks, in call 1
    long: Chunk | None  # one long-prompt chunk, alone in call 2


def plan_step(
    running: list[Sequence],
    batch_size: int,
    chunk_while_decoding: int,
    chunk_alone: int | None = None,
) -> StepPlan:
    """Plans a step over `running` (sorted by seq id, so call 1 keeps that order)."""
    decoding = [seq for seq in running if seq.pending_token is not None]
    rows = sum(1 + len(seq.draft) for seq in decoding)
    # While others decode, prompts are read in small chunks so their streams keep
    # flowing; alone, a prompt is read as fast as one batch holds (or in `chunk_alone`
    # tokens, so the thread count is looked at again between them).
    alone = batch_size if chunk_alone is None else min(batch_size, chunk_alone)
    budget = min(batch_size, chunk_while_decoding) if decoding else alone
    room = max(0, min(batch_size, rows + budget) - rows)
    short: list[Chunk] = []
    oldest_long: Sequence | None = None
    for seq in running:
        if not seq.prefilling:
            continue
        if len(seq.prompt.tokens) >= TILE_ROWS:
            if oldest_long is None or seq.admitted_at < oldest_long.admitted_at:
                oldest_long = seq
        elif room > 0:
            take = min(room, len(seq.prompt.tokens) - seq.n_fed)
            short.append(Chunk(seq, seq.n_fed, take))
            room -= take
    long = None
    if oldest_long is not None:
        remaining = len(oldest_long.prompt.tokens) - oldest_long.n_fed
        take = min(budget, remaining)
        if 0 < remaining - take < TILE_ROWS and remaining - TILE_ROWS >= TILE_ROWS:
            take = remaining - TILE_ROWS  # the last chunk must be a full tile too
        long = Chunk(oldest_long, oldest_long.n_fed, take)
    return StepPlan(decoding, short, long)


def fill(
    batch: Any, decoding: list[Sequence], chunks: list[Chunk]
) -> tuple[int, list[tuple[Sequence, int]]]:
    """Writes pending tokens (each followed by its sequence's draft, logits on every row)
    and prompt chunks into `batch` and advances the sequences' positions; returns (tokens
    written, (sequence, batch index of its first row) pairs to sample)."""
    outputs: list[tuple[Sequence, int]] = []
    n = 0
    for seq in decoding:
        assert seq.pending_token is not None
        outputs.append((seq, n))
        for token in (seq.pending_token, *seq.draft):
            _put(batch, n, token, seq.n_past, seq.seq_id, True)
            seq.n_past += 1
            n += 1
    for chunk in chunks:
        seq, tokens = chunk.seq, chunk.seq.prompt.tokens
        last = chunk.start + chunk.count == len(tokens)
        for i in range(chunk.count):
            pos = chunk.start + i
            _put(batch, n + i, tokens[pos], pos, seq.seq_id, last and i == chunk.count - 1)
        n += chunk.count
        seq.n_fed = seq.n_past = chunk.start + chunk.count
        if last:
            outputs.append((seq, n - 1))
    return n, outputs


def _put(batch: Any, i: int, token: int, pos: int, seq_id: int, logits: bool) -> None:
    batch.token[i] = token
    batch.pos[i] = pos
    batch.n_seq_id[i] = 1
    batch.seq_id[i][0] = seq_id
    batch.logits[i] = logits
