"""Slot bookkeeping for prefix reuse: which slot a prompt gets and how much it may reuse."""

from __future__ import annotations

from browser_llm.engine.slots import TILE_ROWS, SlotTable, reusable

LONG = list(range(1000, 1000 + 3 * TILE_ROWS))


def test_a_short_prompt_reuses_all_but_its_last_token() -> None:
    assert reusable([1, 2, 3, 4], [1, 2, 3, 9, 9]) == 3
    assert reusable([1, 2, 3], [1, 2, 3]) == 2


def test_a_long_prompt_always_re_reads_a_full_tile() -> None:
    assert reusable(LONG, LONG) == len(LONG) - TILE_ROWS
    longer = [*LONG, *range(10)]
    assert reusable(LONG, longer) == len(longer) - TILE_ROWS


def test_cells_from_the_other_kernel_are_never_reused() -> None:
    # A short prompt's cells were computed row by row; a long prompt is read tiled.
    assert reusable(LONG[:10], LONG) == 0
    assert reusable(LONG, LONG[:10]) == 0


def test_claim_prefers_reuse_then_the_lowest_free_id() -> None:
    slots = SlotTable(4)
    assert slots.claim([1, 2]) == (0, 0)
    assert slots.claim([1, 2]) == (1, 0)
    slots.release(0, None)
    slots.release(1, [7, 8, 9])
    assert slots.claim([7, 8, 9, 10]) == (1, 3)  # slot 1 holds the prefix
    assert slots.claim([5, 6]) == (0, 0)  # nothing to reuse: lowest free id
    assert slots.drop_cache() == []


def test_drop_cache_names_the_slots_whose_cells_must_be_freed() -> None:
    slots = SlotTable(2)
    seq_id, _ = slots.claim([1])
    slots.release(seq_id, [1, 2])
    assert slots.drop_cache() == [seq_id]
    assert slots.claim([1, 2, 3]) == (0, 0)
