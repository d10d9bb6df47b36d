"""engine/native/kv/placement.py: the llama.cpp calls KVPlacement makes for each decision (which
slot, which cells to copy, trim, forget, when to move a running sequence), on a model
that records the calls. engine/native/kv/slots.py's own choices are tested in test_slots.py."""

from __future__ import annotations

from typing import Any, cast

import pytest

from browser_llm.engine.native.kv.placement import KVPlacement
from browser_llm.engine.native.kv.slots import COPY_MIN_TOKENS, TILE_ROWS
from browser_llm.engine.native.model import LlamaModel
from browser_llm.engine.native.sequence import Sequence
from browser_llm.engine.prompt import PreparedPrompt


class RecordingModel:
    """The three KV calls KVPlacement may make, recorded in order."""

    def __init__(self, trim_ok: bool = True) -> None:
        self.calls: list[tuple[Any, ...]] = []
        self.trim_ok = trim_ok

    def copy(self, src: int, dst: int) -> None:
        self.calls.append(("copy", src, dst))

    def trim(self, seq_id: int, keep: int) -> bool:
        self.calls.append(("trim", seq_id, keep))
        return self.trim_ok

    def forget(self, seq_id: int) -> None:
        self.calls.append(("forget", seq_id))


def _model(trim_ok: bool = True) -> tuple[RecordingModel, LlamaModel]:
    recording = RecordingModel(trim_ok)
    return recording, cast(LlamaModel, recording)


def _seq(seq_id: int, tokens: list[int], max_tokens: int = 100, fed: int | None = None) -> Sequence:
    """A running sequence; only its slot, prompt and counters matter here."""
    seq = Sequence(
        handle=cast(Any, None),
        seq_id=seq_id,
        prompt=PreparedPrompt(tokens, max_tokens, False),
        sampler=cast(Any, None),
        text=cast(Any, None),
    )
    seq.n_fed = len(tokens) if fed is None else fed
    return seq


SHORT = [11, 12, 13, 14, 15]
LONG = list(range(1000, 1000 + 3 * TILE_ROWS))  # three tiles


# ---- claim -------------------------------------------------------------------------
def test_claim_on_an_empty_table_takes_slot_zero_and_clears_it() -> None:
    rec, model = _model()
    kv = KVPlacement(max_sequences=2, prefix_cache=True)
    assert kv.claim(model, SHORT) == (0, 0)
    # Nothing to reuse: the slot is cut at 0 (whatever an earlier context left there).
    assert rec.calls == [("trim", 0, 0)]
    assert kv.moves == 0


def test_claims_fill_the_slots_then_none_is_free() -> None:
    _, model = _model()
    kv = KVPlacement(max_sequences=3, prefix_cache=True)
    assert [kv.claim(model, SHORT)[0] for _ in range(3)] == [0, 1, 2]
    assert not kv.any_free


def test_a_released_prompt_is_reused_by_the_same_slot() -> None:
    rec, model = _model()
    kv = KVPlacement(max_sequences=2, prefix_cache=True)
    seq_id, _ = kv.claim(model, SHORT)
    kv.release(model, _seq(seq_id, SHORT), keep_cells=True)
    rec.calls.clear()
    # The same prompt again: all but its last token come from the cells.
    assert kv.claim(model, SHORT) == (seq_id, len(SHORT) - 1)
    assert rec.calls == [("trim", seq_id, len(SHORT) - 1)]


def test_only_the_prompt_cells_that_were_read_are_kept() -> None:
    """A sequence cancelled while its prompt was still being read holds only those cells;
    generated tokens are never offered for reuse."""
    _, model = _model()
    kv = KVPlacement(max_sequences=1, prefix_cache=True)
    prompt = [*SHORT, 16, 17, 18]
    kv.claim(model, prompt)
    kv.release(model, _seq(0, prompt, fed=3), keep_cells=True)
    assert kv.claim(model, prompt) == (0, 3)


def test_a_failed_trim_forgets_the_slot_and_reuses_nothing() -> None:
    rec, model = _model()
    kv = KVPlacement(max_sequences=1, prefix_cache=True)
    kv.claim(model, SHORT)
    kv.release(model, _seq(0, SHORT), keep_cells=True)
    rec.trim_ok = False
    rec.calls.clear()
    assert kv.claim(model, SHORT) == (0, 0)
    assert rec.calls == [("trim", 0, len(SHORT) - 1), ("forget", 0)]


def _table_with_cached_long_prompt_out_of_reach(
    model: LlamaModel,
) -> tuple[KVPlacement, int]:
    """Five slots: LONG cached in free slot 0, slots 2 and 3 busy, 1 and 4 free. A new
    sequence must go next to the busy run (1 or 4), never into 0."""
    kv = KVPlacement(max_sequences=5, prefix_cache=True)
    assert [kv.claim(model, SHORT)[0] for _ in range(4)] == [0, 1, 2, 3]
    kv.release(model, _seq(0, LONG), keep_cells=True)
    kv.release(model, _seq(1, SHORT), keep_cells=False)
    return kv, 1


def test_a_long_enough_prefix_elsewhere_is_copied_in() -> None:
    rec, model = _model()
    kv, target = _table_with_cached_long_prompt_out_of_reach(model)
    rec.calls.clear()
    tokens = [*LONG, *range(5000, 5000 + TILE_ROWS)]
    seq_id, reused = kv.claim(model, tokens)
    assert seq_id == target
    assert reused == len(LONG) >= COPY_MIN_TOKENS
    # Copied first, then cut to what is reused (the copy brings the whole stream).
    assert rec.calls == [("copy", 0, target), ("trim", target, len(LONG))]
    assert kv.moves == 1


def test_a_short_shared_prefix_is_not_worth_a_copy() -> None:
    rec, model = _model()
    kv, target = _table_with_cached_long_prompt_out_of_reach(model)
    rec.calls.clear()
    # Shares TILE_ROWS - 1 tokens with LONG: fewer than a copy must save.
    tokens = [*LONG[: TILE_ROWS - 1], *range(5000, 5000 + 2 * TILE_ROWS)]
    assert kv.claim(model, tokens) == (target, 0)
    assert rec.calls == [("trim", target, 0)]
    assert kv.moves == 0


def test_a_failed_trim_after_a_copy_reuses_nothing() -> None:
    rec, model = _model()
    kv, target = _table_with_cached_long_prompt_out_of_reach(model)
    rec.trim_ok = False
    rec.calls.clear()
    tokens = [*LONG, *range(5000, 5000 + TILE_ROWS)]
    assert kv.claim(model, tokens) == (target, 0)
    assert rec.calls == [("copy", 0, target), ("trim", target, len(LONG)), ("forget", target)]


# ---- release and drop_caches -------------------------------------------------------
@pytest.mark.parametrize(
    ("prefix_cache", "keep_cells"), [(False, True), (True, False), (False, False)]
)
def test_release_forgets_cells_unless_they_are_kept_for_reuse(
    prefix_cache: bool, keep_cells: bool
) -> None:
    rec, model = _model()
    kv = KVPlacement(max_sequences=1, prefix_cache=prefix_cache)
    kv.claim(model, SHORT)
    rec.calls.clear()
    kv.release(model, _seq(0, SHORT), keep_cells=keep_cells)
    assert rec.calls == [("forget", 0)]
    assert kv.any_free
    assert kv.claim(model, SHORT) == (0, 0)


def test_release_keeps_cells_with_the_prefix_cache() -> None:
    rec, model = _model()
    kv = KVPlacement(max_sequences=1, prefix_cache=True)
    kv.claim(model, SHORT)
    rec.calls.clear()
    kv.release(model, _seq(0, SHORT), keep_cells=True)
    assert rec.calls == []


def test_release_without_a_model_frees_the_slot() -> None:
    _, model = _model()
    kv = KVPlacement(max_sequences=1, prefix_cache=False)
    kv.claim(model, SHORT)
    assert not kv.any_free
    kv.release(None, _seq(0, SHORT), keep_cells=False)
    assert kv.any_free


def test_drop_caches_forgets_every_kept_prompt() -> None:
    rec, model = _model()
    kv = KVPlacement(max_sequences=3, prefix_cache=True)
    for _ in range(3):
        kv.claim(model, SHORT)
    kv.release(model, _seq(0, SHORT), keep_cells=True)
    kv.release(model, _seq(2, [7, 8, 9]), keep_cells=True)
    rec.calls.clear()
    kv.drop_caches(model)
    assert sorted(rec.calls) == [("forget", 0), ("forget", 2)]
    rec.calls.clear()
    kv.drop_caches(model)
    assert rec.calls == []  # already dropped
    kv.release(model, _seq(1, SHORT), keep_cells=False)
    assert kv.claim(model, SHORT)[1] == 0  # nothing left to reuse


def test_drop_caches_without_a_model_still_forgets_the_bookkeeping() -> None:
    _, model = _model()
    kv = KVPlacement(max_sequences=1, prefix_cache=True)
    kv.claim(model, SHORT)
    kv.release(model, _seq(0, SHORT), keep_cells=True)
    kv.drop_caches(None)
    assert kv.claim(model, SHORT) == (0, 0)


# ---- compact -----------------------------------------------------------------------
def _three_running(model: LlamaModel, prefix_cache: bool) -> tuple[KVPlacement, list[Sequence]]:
    kv = KVPlacement(max_sequences=3, prefix_cache=prefix_cache)
    running = []
    for i in range(3):
        tokens = [100 + i, 200 + i, 300 + i]
        seq_id, _ = kv.claim(model, tokens)
        running.append(_seq(seq_id, tokens))
    return kv, running


def test_compact_without_a_hole_does_nothing() -> None:
    rec, model = _model()
    kv, running = _three_running(model, prefix_cache=True)
    rec.calls.clear()
    kv.compact(model, running)
    assert rec.calls == [] and kv.moves == 0
    assert [s.seq_id for s in running] == [0, 1, 2]


@pytest.mark.parametrize("prefix_cache", [False, True])
def test_compact_moves_the_highest_sequence_into_the_hole(prefix_cache: bool) -> None:
    rec, model = _model()
    kv, running = _three_running(model, prefix_cache)
    middle = running.pop(1)
    kv.release(model, middle, keep_cells=False)
    rec.calls.clear()
    moved = running[1]
    kv.compact(model, running)
    expected: list[tuple[Any, ...]] = [("copy", 2, 1)]
    if not prefix_cache:
        expected.append(("forget", 2))
    assert rec.calls == expected
    assert moved.seq_id == 1
    assert [s.seq_id for s in running] == [0, 1]  # still sorted by slot
    assert kv.moves == 1
    rec.calls.clear()
    kv.compact(model, running)  # one run again: nothing more to do
    assert rec.calls == []
    # The next sequence goes next to the run: slot 2, where the moved prompt's cells
    # stayed for reuse only with the prefix cache.
    seq_id, reused = kv.claim(model, moved.prompt.tokens)
    assert seq_id == 2
    assert reused == (len(moved.prompt.tokens) - 1 if prefix_cache else 0)


def test_compact_keeps_the_order_of_several_running_sequences() -> None:
    _, model = _model()
    kv = KVPlacement(max_sequences=5, prefix_cache=False)
    running = []
    for i in range(5):
        seq_id, _ = kv.claim(model, [i])
        running.append(_seq(seq_id, [i]))
    for gone in (running[1], running[2]):
        kv.release(model, gone, keep_cells=False)
    running = [running[0], running[3], running[4]]
    kv.compact(model, running)
    assert [s.seq_id for s in running] == [0, 1, 3]
    assert running[1].prompt.tokens == [4]  # the highest moved into the lowest hole
    kv.compact(model, running)
    assert [s.seq_id for s in running] == [0, 1, 2]
    assert running[2].prompt.tokens == [3]
    assert kv.moves == 2


def test_compact_leaves_a_sequence_about_to_end() -> None:
    rec, model = _model()
    kv = KVPlacement(max_sequences=3, prefix_cache=False)
    running = []
    for i in range(3):
        seq_id, _ = kv.claim(model, [i])
        running.append(_seq(seq_id, [i], max_tokens=10))
    kv.release(model, running.pop(1), keep_cells=False)
    last = running[1]
    last.n_generated = 7  # three tokens left: not worth a stream copy
    rec.calls.clear()
    kv.compact(model, running)
    assert rec.calls == [] and kv.moves == 0 and last.seq_id == 2
    last.n_generated = 6  # four left: moved
    kv.compact(model, running)
    assert last.seq_id == 1 and kv.moves == 1
