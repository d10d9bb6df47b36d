"""Sequence slots of one llama.cpp context: which are free, and which prompt each still
holds in its KV cells for prefix reuse. Pure bookkeeping; the engine does the llama.cpp calls."""

from __future__ import annotations

__all__ = ["TILE_ROWS", "SlotTable", "reusable"]

# llama.cpp's CPU flash attention takes a tiled path for a sequence with at least
# this many query rows in a micro-batch and a row-by-row path below it; the two
# round differently. A prompt this long is therefore always read in chunks of at
# least this size, each in a decode call of its own, exactly as when it runs
# alone, so batching and prefix reuse never change its output (ggml GGML_FA_TILE_Q).
TILE_ROWS = 64


def reusable(cached: list[int], tokens: list[int]) -> int:
    """How many of `tokens` can come from cells holding `cached` (an earlier prompt)
    with the output unchanged: the cells must have been computed the way a fresh
    read would compute them, and the rest must still be read as a full tile."""
    if (len(cached) >= TILE_ROWS) != (len(tokens) >= TILE_ROWS):
        return 0
    shared = 0
    for x, y in zip(cached, tokens, strict=False):
        if x != y:
            break
        shared += 1
    # At least the last prompt token is read again: its logits give the first token.
    floor = TILE_ROWS if len(tokens) >= TILE_ROWS else 1
    return max(0, min(shared, len(tokens) - floor))


class SlotTable:
    def __init__(self, count: int) -> None:
        self._free = list(range(count))
        self._cached: dict[int, list[int]] = {}  # free slot -> prompt its cells hold

    @property
    def any_free(self) -> bool:
        return bool(self._free)

    def claim(self, tokens: list[int]) -> tuple[int, int]:
        """Takes the free slot that can reuse the most of `tokens`, else the lowest free
        id (llama.cpp packs only runs of consecutive ids into one micro-batch, so compact
        ids mean fewer passes); returns (seq_id, tokens its cells can give)."""
        best_id, best = min(self._free), 0
        for seq_id in self._free:
            cached = self._cached.get(seq_id)
            if cached is not None:
                usable = reusable(cached, tokens)
                if usable > best:
                    best_id, best = seq_id, usable
        self._free.remove(best_id)
        self._cached.pop(best_id, None)
        return best_id, best

    def release(self, seq_id: int, cached: list[int] | None) -> None:
        """Frees a slot; `cached` is the prompt its cells still hold (None: none)."""
        if cached is not None:
            self._cached[seq_id] = cached
        self._free.append(seq_id)

    def drop_cache(self) -> list[int]:
        """Forgets every cached prompt; returns the slots whose cells must be freed."""
        ids = list(self._cached)
        self._cached.clear()
        return ids
