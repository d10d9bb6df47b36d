"""Where sequences live in the KV cache: engine/native/kv/slots.py's bookkeeping plus the llama.cpp
calls that carry it out (copy a prefix into a slot, trim or forget a slot's cells,
move a running sequence into a hole). Engine thread only."""

from __future__ import annotations

from browser_llm.engine.native.kv.slots import SlotTable
from browser_llm.engine.native.model import LlamaModel
from browser_llm.engine.native.sequence import Sequence

__all__ = ["KVPlacement"]

# A sequence this close to its token limit is not worth a KV stream copy to close a hole.
_MOVE_MIN_REMAINING = 4


class KVPlacement:
    def __init__(self, max_sequences: int, prefix_cache: bool) -> None:
        self._slots = SlotTable(max_sequences)
        self._prefix_cache = prefix_cache
        self.moves = 0  # KV stream copies: holes closed and prefixes copied

    @property
    def any_free(self) -> bool:
        return self._slots.any_free

    def claim(self, model: LlamaModel, tokens: list[int], beat: int = 0) -> tuple[int, int]:
        """A free slot for `tokens` with its reusable prefix kept: (seq_id, tokens reused).
        No other slot's cells are copied in unless they give more than `beat` tokens (the
        prompt cache's offer: a copy is carried out at the next decode, over a restore)."""
        seq_id, reused, copy_from = self._slots.claim(tokens)
        if copy_from is not None and reused <= beat:
            model.forget(seq_id)
            return seq_id, 0
        if copy_from is not None:
            model.copy(copy_from, seq_id)
            self.moves += 1
        if not model.trim(seq_id, reused):
            model.forget(seq_id)
            reused = 0
        return seq_id, reused

    def compact(self, model: LlamaModel, running: list[Sequence]) -> None:
        """Moves the highest running sequence into a hole a finished one left, so the
        running ids stay one run (one pass over the weights per step). `running` is
        kept sorted by seq id."""
        move = self._slots.compaction()
        if move is None:
            return
        src, dst = move
        seq = next(s for s in running if s.seq_id == src)
        if seq.prompt.max_tokens - seq.n_generated < _MOVE_MIN_REMAINING:
            return  # about to end; the hole closes by itself
        model.copy(src, dst)
        self._slots.move(src, dst, self._cacheable(seq))
        if not self._prefix_cache:
            model.forget(src)
        seq.seq_id = dst
        running.sort(key=lambda s: s.seq_id)
        self.moves += 1

    def release(self, model: LlamaModel | None, seq: Sequence, keep_cells: bool) -> None:
        """A sequence ended: its slot is free; its prompt cells stay for reuse if whole."""
        cached = self._cacheable(seq) if keep_cells else None
        if cached is None and model is not None:
            model.forget(seq.seq_id)
        self._slots.release(seq.seq_id, cached)

    def drop_caches(self, model: LlamaModel | None) -> None:
        """Forgets every kept prompt (after a failed decode, or when the context goes)."""
        for seq_id in self._slots.drop_cache():
            if model is not None:
                model.forget(seq_id)

    def _cacheable(self, seq: Sequence) -> list[int] | None:
        """The prompt a finished or moved sequence's cells can serve again."""
        if not self._prefix_cache:
            return None
        # Only prompt cells: generated tokens were computed one row at a time,
        # which rounds differently from reading them as part of a prompt.
        return seq.prompt.tokens[: seq.n_fed]
