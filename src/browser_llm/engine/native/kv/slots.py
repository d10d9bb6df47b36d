"""Sequence slots of one llama.cpp context: which are free, which prompt each still
holds in its KV cells for prefix reuse, and where a sequence should sit so that the
running ones form one run of consecutive ids. Pure bookkeeping; the engine does the
llama.cpp calls."""

from __future__ import annotations

from typing import NamedTuple

__all__ = ["COPY_MIN_TOKENS", "TILE_ROWS", "Claim", "SlotTable", "reusable", "shared_prefix"]

# llama.cpp's CPU flash attention takes a tiled path for a sequence with at least
# this many query rows in a micro-batch and a row-by-row path below it; the two
# round differently. A prompt this long is therefore always read in chunks of at
# least this size, each in a decode call of its own, exactly as when it runs
# alone, so batching and prefix reuse never change its output (ggml GGML_FA_TILE_Q).
TILE_ROWS = 64

# Copying a slot's cells into another slot copies its whole KV stream (llama.cpp
# copies streams, not cells), about as costly as one pass over the weights of a
# small model; worth it only to skip reading at least this many prompt tokens.
COPY_MIN_TOKENS = TILE_ROWS


def shared_prefix(a: list[int], b: list[int]) -> int:
    """How many leading tokens `a` and `b` have in common."""
    shared = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        shared += 1
    return shared


def reusable(cached: list[int], tokens: list[int]) -> int:
    """How many of `tokens` can come from cells holding `cached` (an earlier prompt)
    with the output unchanged: the cells must have been computed the way a fresh
    read would compute them, and the rest must still be read as a full tile."""
    return _reusable(len(cached), len(tokens), shared_prefix(cached, tokens))


def _reusable(n_cached: int, n_tokens: int, shared: int) -> int:
    if (n_cached >= TILE_ROWS) != (n_tokens >= TILE_ROWS):
        return 0
    # At least the last prompt token is read again: its logits give the first token.
    floor = TILE_ROWS if n_tokens >= TILE_ROWS else 1
    return max(0, min(shared, n_tokens - floor))


class Claim(NamedTuple):
    seq_id: int
    reused: int  # prompt tokens the slot's cells give
    copy_from: int | None  # a free slot whose cells are to be copied in first


class SlotTable:
    """llama.cpp (one KV stream per sequence) packs only runs of consecutive
    sequence ids into one micro-batch: running ids {0, 2, 3} cost two passes over
    the weights per step where {0, 1, 2} cost one. So new sequences take the id that
    keeps the running ones in one run, and `compaction` names a sequence to move
    when a finished one leaves a hole."""

    def __init__(self, count: int) -> None:
        self._count = count
        self._free = set(range(count))
        self._cached: dict[int, list[int]] = {}  # free slot -> prompt its cells hold

    @property
    def any_free(self) -> bool:
        return bool(self._free)

    def _busy(self) -> list[int]:
        return sorted(set(range(self._count)) - self._free)

    def _candidates(self) -> list[int]:
        """Free ids that keep (or make) the busy ids one run."""
        busy = self._busy()
        if not busy:
            return sorted(self._free)
        gaps = [f for f in self._free if busy[0] < f < busy[-1]]
        if gaps:
            return gaps
        return [f for f in (busy[0] - 1, busy[-1] + 1) if f in self._free]

    def _usable(self, seq_id: int, tokens: list[int]) -> int:
        cached = self._cached.get(seq_id)
        return reusable(cached, tokens) if cached is not None else 0

    def _worth(self, seq_id: int, tokens: list[int]) -> int:
        """Prompt tokens taking this slot saves now, minus the cached tokens it throws
        away (those after where `tokens` leaves the cached prompt). Two chats that share
        only a system prompt must not evict each other's cells for those few tokens."""
        cached = self._cached.get(seq_id)
        if cached is None:
            return 0
        shared = shared_prefix(cached, tokens)  # one scan for both terms
        return _reusable(len(cached), len(tokens), shared) - (len(cached) - shared)

    def claim(self, tokens: list[int]) -> Claim:
        """Takes the candidate slot worth the most for `tokens` (ties: one holding no
        cached prompt, so caches last; then the lowest id). If another free slot can give
        at least COPY_MIN_TOKENS more, its cells are copied in."""
        candidates = self._candidates()
        target = min(candidates, key=lambda f: (-self._worth(f, tokens), f in self._cached, f))
        own = self._usable(target, tokens)
        best_id, best = target, own
        for seq_id in sorted(self._free):
            usable = self._usable(seq_id, tokens)
            if usable > best:
                best_id, best = seq_id, usable
        self._free.remove(target)
        self._cached.pop(target, None)
        if best - own >= COPY_MIN_TOKENS:
            return Claim(target, best, best_id)
        return Claim(target, own, None)

    def release(self, seq_id: int, cached: list[int] | None) -> None:
        """Frees a slot; `cached` is the prompt its cells still hold (None: none)."""
        if cached is not None:
            self._cached[seq_id] = cached
        self._free.add(seq_id)

    def compaction(self) -> tuple[int, int] | None:
        """(src, dst) when the busy ids are not one run: the highest busy slot
        should move into the lowest hole below it."""
        busy = self._busy()
        if not busy or busy[-1] - busy[0] + 1 == len(busy):
            return None
        return busy[-1], min(f for f in self._free if busy[0] < f < busy[-1])

    def move(self, src: int, dst: int, cached: list[int] | None) -> None:
        """Records that the sequence in `src` now sits in the free slot `dst`."""
        self._free.remove(dst)
        self._cached.pop(dst, None)
        self.release(src, cached)

    def drop_cache(self) -> list[int]:
        """Forgets every cached prompt; returns the slots whose cells must be freed."""
        ids = list(self._cached)
        self._cached.clear()
        return ids
