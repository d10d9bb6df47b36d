"""Slot bookkeeping for prefix reuse: which slot a prompt gets and how much it may reuse."""

from __future__ import annotations

from browser_llm.engine.native.kv.slots import TILE_ROWS, SlotTable, reusable

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


def test_claim_keeps_running_ids_one_run_and_reuses_what_the_slot_holds() -> None:
    slots = SlotTable(4)
    assert slots.claim([1, 2]) == (0, 0, None)
    assert slots.claim([1, 2]) == (1, 0, None)
    slots.release(0, None)
    slots.release(1, [7, 8, 9])
    # Nothing busy: any slot is one run; slot 1 holds a reusable prefix.
    assert slots.claim([7, 8, 9, 10]) == (1, 3, None)
    # Busy {1}: 0 or 2; neither holds anything, so the lowest.
    assert slots.claim([5, 6]) == (0, 0, None)
    assert slots.claim([5, 6]) == (2, 0, None)


def test_a_new_prompt_leaves_cached_prompts_alone_when_it_can() -> None:
    slots = SlotTable(3)
    for _ in range(3):
        slots.claim([1])
    slots.release(0, [7, 8, 9])
    slots.release(1, None)
    slots.release(2, None)
    assert slots.claim([5, 6]) == (1, 0, None)


def test_chats_sharing_only_a_system_prompt_keep_their_own_slots() -> None:
    """Three conversations with one 26-token system prompt, asked in turn: each keeps its
    own slot; taking another's slot would save 26 tokens and throw away ~200."""
    system = list(range(26))
    chats = [[*system, *range(100 * (n + 1), 100 * (n + 1) + 180)] for n in range(3)]
    slots = SlotTable(4)
    first = []
    for chat in chats:
        claim = slots.claim(chat)
        first.append(claim.seq_id)
        slots.release(claim.seq_id, chat)
    assert len(set(first)) == 3
    for n, chat in enumerate(chats):  # each chat's next turn: its prompt plus more
        claim = slots.claim([*chat, 7, 8, 9])
        assert claim.seq_id == first[n]
        assert claim.reused == len(chat) + 3 - TILE_ROWS
        slots.release(claim.seq_id, [*chat, 7, 8, 9])


def test_when_every_slot_holds_a_prompt_the_least_valuable_goes() -> None:
    slots = SlotTable(2)
    for _ in range(2):
        slots.claim([1])
    slots.release(0, LONG)
    slots.release(1, [5, 6, 7])
    assert slots.claim([9, 9, 9]).seq_id == 1  # throws away 3 cached tokens, not 192


def test_a_short_reusable_prefix_in_a_far_slot_is_not_worth_a_copy() -> None:
    slots = SlotTable(4)
    for _ in range(4):
        slots.claim([1])
    slots.release(3, [7, 8, 9])
    slots.release(1, None)
    slots.release(2, None)
    # Busy {0}: slot 1 keeps one run; slot 3's 3 tokens do not pay for a stream copy.
    assert slots.claim([7, 8, 9, 10]) == (1, 0, None)


def test_a_long_reusable_prefix_is_copied_into_the_preferred_slot() -> None:
    slots = SlotTable(4)
    for _ in range(4):
        slots.claim([1])
    slots.release(3, LONG)
    for seq_id in (1, 2):
        slots.release(seq_id, None)
    claim = slots.claim([*LONG, 5, 6])
    assert claim == (1, len(LONG) + 2 - TILE_ROWS, 3)
    # The source keeps its cells: a second request can still copy them.
    assert slots.claim([*LONG, 9]) == (2, len(LONG) + 1 - TILE_ROWS, 3)


def test_a_hole_below_running_sequences_is_filled_first() -> None:
    slots = SlotTable(8)
    for _ in range(4):
        slots.claim([1])
    slots.release(1, None)
    assert slots.claim([2]).seq_id == 1
    slots.release(0, None)  # busy {1, 2, 3}: 0 or 4 extend the run, never 5
    assert slots.claim([2]).seq_id == 0
    assert slots.claim([2]).seq_id == 4


def test_compaction_moves_the_highest_sequence_into_the_lowest_hole() -> None:
    slots = SlotTable(8)
    for _ in range(5):
        slots.claim([1])
    assert slots.compaction() is None
    slots.release(1, None)
    slots.release(2, None)
    assert slots.compaction() == (4, 1)
    slots.move(4, 1, [1])
    assert slots.compaction() == (3, 2)
    slots.move(3, 2, None)
    assert slots.compaction() is None  # busy {0, 1, 2}
    assert slots.claim([1]) == (3, 0, None)


def test_drop_cache_names_the_slots_whose_cells_must_be_freed() -> None:
    slots = SlotTable(2)
    seq_id = slots.claim([1]).seq_id
    slots.release(seq_id, [1, 2])
    assert slots.drop_cache() == [seq_id]
    assert slots.claim([1, 2, 3]) == (0, 0, None)
