"""Step planning: which tokens each decode call carries (no llama.cpp needed)."""

from __future__ import annotations

from typing import Any

from browser_llm.engine.native.batch_plan import fill, plan_step
from browser_llm.engine.native.kv.slots import TILE_ROWS
from browser_llm.engine.native.sequence import Sequence
from browser_llm.engine.prompt import PreparedPrompt


def seq(seq_id: int, prompt_len: int, fed: int = 0, pending: int | None = None) -> Sequence:
    prompt = PreparedPrompt(list(range(100, 100 + prompt_len)), max_tokens=16, clamped=False)
    s = Sequence(handle=None, seq_id=seq_id, prompt=prompt, sampler=None, text=None)  # type: ignore[arg-type]
    s.n_fed = s.n_past = fed
    s.pending_token = pending
    return s


class FakeBatch:
    """The fields of a llama_batch that fill() writes."""

    def __init__(self, size: int) -> None:
        self.token = [0] * size
        self.pos = [0] * size
        self.n_seq_id = [0] * size
        self.seq_id = [[0] for _ in range(size)]
        self.logits = [False] * size


def test_decoding_sequences_and_short_prompts_share_call_one() -> None:
    a, b = seq(0, 10, fed=10, pending=7), seq(1, 12)
    plan = plan_step([a, b], batch_size=512, chunk_while_decoding=128)
    assert plan.decoding == [a]
    assert [(c.seq, c.start, c.count) for c in plan.short] == [(b, 0, 12)]
    assert plan.long is None


def test_a_long_prompt_goes_alone_oldest_first() -> None:
    old, new = seq(0, 300), seq(1, 300)
    old.admitted_at, new.admitted_at = 1.0, 2.0
    plan = plan_step([new, old], batch_size=512, chunk_while_decoding=128)
    assert plan.short == [] and plan.long is not None
    assert (plan.long.seq, plan.long.start, plan.long.count) == (old, 0, 300)


def test_while_others_decode_a_long_prompt_is_read_in_chunks_ending_on_a_full_tile() -> None:
    running, long = seq(0, 5, fed=5, pending=1), seq(1, 128 + 10)
    chunks = []
    while long.prefilling:
        plan = plan_step([running, long], batch_size=512, chunk_while_decoding=128)
        assert plan.long is not None
        chunks.append(plan.long.count)
        long.n_fed += plan.long.count
    # 128 then 10 would leave a 10-token chunk on the row-by-row kernel.
    assert chunks == [128 + 10 - TILE_ROWS, TILE_ROWS]


def test_short_prompts_fill_only_the_room_left() -> None:
    running = [seq(i, 4, fed=4, pending=1) for i in range(3)]
    waiting = [seq(3, 40), seq(4, 40)]
    plan = plan_step([*running, *waiting], batch_size=512, chunk_while_decoding=50)
    assert [(c.seq.seq_id, c.count) for c in plan.short] == [(3, 40), (4, 10)]


def test_fill_writes_positions_and_asks_logits_only_where_sampled() -> None:
    a, b = seq(0, 3, fed=3, pending=42), seq(2, 6)
    a.n_past = 5
    plan = plan_step([a, b], batch_size=512, chunk_while_decoding=4)
    batch: Any = FakeBatch(16)
    n, outputs = fill(batch, plan.decoding, plan.short)
    assert n == 5  # a's token, then 4 of b's 6 prompt tokens
    assert batch.token[:5] == [42, 100, 101, 102, 103]
    assert batch.pos[:5] == [5, 0, 1, 2, 3]
    assert [ids[0] for ids in batch.seq_id[:5]] == [0, 2, 2, 2, 2]
    assert batch.logits[:5] == [True, False, False, False, False]  # b's prompt is not done
    assert outputs == [(a, 0)]
    assert (a.n_past, b.n_fed, b.n_past) == (6, 4, 4)
    plan = plan_step([a, b], batch_size=512, chunk_while_decoding=4)
    n, outputs = fill(batch, [], plan.short)
    assert n == 2 and batch.logits[:2] == [False, True] and outputs == [(b, 1)]


def test_a_draft_follows_its_pending_token_with_logits_on_every_row() -> None:
    a, b = seq(0, 10, fed=10, pending=7), seq(1, 10, fed=10, pending=8)
    a.draft = [21, 22, 23]
    plan = plan_step([a, b], batch_size=512, chunk_while_decoding=128)
    batch = FakeBatch(16)
    n, outputs = fill(batch, plan.decoding, plan.short)
    assert n == 5
    assert outputs == [(a, 0), (b, 4)]
    assert batch.token[:5] == [7, 21, 22, 23, 8]
    assert batch.pos[:5] == [10, 11, 12, 13, 10]
    assert [s[0] for s in batch.seq_id[:5]] == [0, 0, 0, 0, 1]
    assert batch.logits[:5] == [True] * 5
    assert (a.n_past, b.n_past) == (14, 11)


def test_draft_rows_take_their_room_from_prompt_chunks() -> None:
    a, b = seq(0, 10, fed=10, pending=7), seq(1, 40)
    a.draft = [1] * 5
    plan = plan_step([a, b], batch_size=32, chunk_while_decoding=128)
    assert [(c.start, c.count) for c in plan.short] == [(0, 26)]


def test_a_lone_prompt_is_read_in_chunk_alone_tokens_when_given() -> None:
    """On reduced threads the engine reads a prompt in small chunks, re-checking the
    thread count between them; otherwise a lone prompt fills the batch."""
    long = seq(1, 300)
    whole = plan_step([long], batch_size=512, chunk_while_decoding=128).long
    assert whole is not None and (whole.start, whole.count) == (0, 300)
    part = plan_step([long], batch_size=512, chunk_while_decoding=128, chunk_alone=128).long
    assert part is not None and (part.start, part.count) == (0, 128)
