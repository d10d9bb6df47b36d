"""Speculation's pure parts: prompt-lookup drafts, the acceptance rule, draft budgets."""

from __future__ import annotations

import pytest

from browser_llm.engine.native.speculation import costs as costs_module
from browser_llm.engine.native.speculation.budget import (
    MAX_DRAFT,
    AcceptanceRate,
    Backoff,
    MatchRates,
    Offer,
    allot,
    price,
)
from browser_llm.engine.native.speculation.costs import WARM_STEPS, DraftCosts, StepCosts
from browser_llm.engine.native.speculation.drafts import MAX_MATCH, NgramIndex
from browser_llm.engine.native.speculation.verify import Unverified, confirmed
from browser_llm.engine.native.speculator import EXACT_CELLS, Speculator


def test_a_draft_is_what_followed_the_latest_occurrence_of_the_suffix() -> None:
    index = NgramIndex([1, 2, 3, 4, 5, 9, 2, 3, 7, 8, 1, 2, 3])
    # [1, 2, 3] occurred once before, at the start: 4, 5 followed it.
    assert index.draft(2) == [4, 5]
    assert index.draft(10) == [4, 5, 9, 2, 3, 7, 8, 1, 2, 3]


def test_the_longest_matching_suffix_wins_over_a_more_recent_short_one() -> None:
    index = NgramIndex([5, 6, 7, 40, 9, 7, 50, 6, 7])
    # "7" last occurred before 50, but "6 7" (longer) occurred before 40.
    assert index.draft(1) == [40]
    index = NgramIndex([9, 7, 40, 8, 7, 50, 3, 7])
    assert index.draft(1) == [50]  # only "7" matches: its latest occurrence


def test_appending_moves_the_lookup_on() -> None:
    index = NgramIndex([1, 2, 3, 4, 1, 2])
    assert index.draft(3) == [3, 4, 1]
    index.append(3)
    assert index.draft(3) == [4, 1, 2]
    index.append(9)  # "3 9" and "9" never occurred before
    assert index.draft(3) == []
    assert len(index) == 8


def test_no_draft_without_a_match_or_a_limit() -> None:
    assert NgramIndex([]).draft(4) == []
    assert NgramIndex([1, 2, 3]).draft(4) == []
    assert NgramIndex([1, 2, 1]).draft(0) == []


def test_the_suffix_never_matches_itself() -> None:
    assert NgramIndex([7]).draft(3) == []
    assert NgramIndex([7, 7]).draft(3) == [7]


def _sampler(tokens: list[int]) -> tuple[list[int], object]:
    seen: list[int] = []

    def sample(row: int) -> int:
        seen.append(row)
        return tokens[row]

    return seen, sample


@pytest.mark.parametrize(
    ("draft", "sampled", "expected", "rows"),
    [
        ([], [5], [5], [0]),  # no draft: one token, as without speculation
        ([5, 6, 7], [5, 6, 7, 8], [5, 6, 7, 8], [0, 1, 2, 3]),  # all right: one extra
        ([5, 6, 7], [5, 9, 7, 8], [5, 9], [0, 1]),  # second wrong: its sample replaces it
        ([5, 6, 7], [4, 6, 7, 8], [4], [0]),  # first wrong: only the pending row counts
    ],
)
def test_draft_tokens_count_while_the_samples_agree(
    draft: list[int], sampled: list[int], expected: list[int], rows: list[int]
) -> None:
    seen, sample = _sampler(sampled)
    assert confirmed(draft, sample) == expected  # type: ignore[arg-type]
    assert seen == rows  # each row sampled once, in order, none past the first miss


def test_a_draft_comes_with_how_far_back_its_match_reaches() -> None:
    index = NgramIndex([7, 7, 1, 2, 3, 4, 5, 6, 8, 7, 1, 2, 3])
    assert index.lookup(2) == ([4, 5], 4)  # 7 1 2 3 matched, not 7 7 1 2 3
    assert index.lookup(0) == ([], 0)
    assert NgramIndex([1, 2, 3]).lookup(4) == ([], 0)
    long = list(range(100, 150))
    assert NgramIndex([*long, 1, *long]).lookup(1) == ([1], MAX_MATCH)


def test_match_classes_learn_apart() -> None:
    rates = MatchRates()
    for _ in range(5):
        rates.record(matched=20, drafted=10, accepted=10)
        rates.record(matched=1, drafted=3, accepted=0)
    assert rates.rate(17) == rates.rate(40) > 0.9
    assert rates.rate(1) < 0.2
    assert rates.rate(5) == rates.rate(8) == MatchRates().rate(6)  # nothing learnt there


def test_an_unverified_draft_keeps_its_match_length() -> None:
    shadow = Unverified()
    shadow.start([5, 6], matched=9)
    assert shadow.judge(5) is None
    assert shadow.judge(7) == (2, 1)
    assert shadow.matched == 9


def test_the_rate_falls_with_wrong_drafts_and_rises_with_right_ones() -> None:
    rate = AcceptanceRate()
    start = rate.rate
    rate.record(drafted=4, accepted=0)
    assert rate.rate < start
    low = rate.rate
    for _ in range(5):
        rate.record(drafted=8, accepted=8)
    assert rate.rate > low


# The costs bench/speculation_ceiling.py measured on a 2-core EPYC, in one-row decodes.
def _ceiling(streams: int) -> DraftCosts:
    return DraftCosts(plain=1 + 0.6 * (streams - 1), first_row=1.1, row=0.5)


def test_one_stream_drafts_long_when_its_drafts_are_right() -> None:
    assert allot([Offer(0.999, MAX_DRAFT)], 500, _ceiling(1)) == [MAX_DRAFT]
    assert allot([Offer(0.98, 15)], 500, _ceiling(1))[0] >= 10
    sure = allot([Offer(0.9, 15)], 500, _ceiling(1))[0]
    assert 2 <= sure < MAX_DRAFT
    assert allot([Offer(0.6, 15)], 500, _ceiling(1)) == [0]  # a loss: no draft


def test_a_full_batch_drafts_only_near_certain_tokens() -> None:
    assert allot([Offer(0.9, 8)] * 8, 500, _ceiling(8)) == [0] * 8
    rows = allot([Offer(0.999, 15)] + [Offer(0.5, 15)] * 7, 500, _ceiling(8))
    assert rows[0] > 0 and rows[1:] == [0] * 7


def test_drafts_fit_the_room_and_what_was_found() -> None:
    assert allot([Offer(0.99, 3)], 500, _ceiling(1)) == [3]
    assert allot([Offer(0.99, 15)], 4, _ceiling(1)) == [4]
    assert allot([Offer(0.99, 15)], 0, _ceiling(1)) == [0]
    assert allot([Offer(0.99, 0)], 500, _ceiling(1)) == [0]  # sitting out: no tokens


def test_dearer_rows_need_surer_drafts() -> None:
    cheap = DraftCosts(plain=1.0, first_row=0.2, row=0.1)  # e.g. a memory-bound machine
    dear = DraftCosts(plain=1.0, first_row=2.0, row=1.0)
    assert allot([Offer(0.7, 15)], 500, cheap)[0] > 0
    assert allot([Offer(0.7, 15)], 500, _ceiling(1)) == [0]
    assert allot([Offer(0.95, 15)], 500, _ceiling(1))[0] > 0
    assert allot([Offer(0.95, 15)], 500, dear) == [0]


def _warm(costs: StepCosts, streams: int, seconds: float) -> None:
    for _ in range(WARM_STEPS):
        costs.observe(streams, 0, 0, seconds)


def test_no_costs_until_the_batch_size_was_timed_without_drafts() -> None:
    costs = StepCosts()
    assert costs.for_batch(1) is None
    for _ in range(WARM_STEPS - 1):
        costs.observe(1, 0, 0, 0.005)
    assert costs.for_batch(1) is None
    costs.observe(1, 0, 0, 0.005)
    got = costs.for_batch(1)
    assert got is not None and got.plain == pytest.approx(0.005)
    assert costs.for_batch(8) is None  # each batch size is timed on its own


def test_draft_costs_start_from_the_ceilings_ratios_of_the_measured_step() -> None:
    costs = StepCosts()
    _warm(costs, 1, 0.010)
    got = costs.for_batch(1)
    assert got is not None
    assert got.first_row == pytest.approx(0.010 * costs_module.PRIOR_FIRST_ROW)
    assert got.row == pytest.approx(0.010 * costs_module.PRIOR_ROW)
    _warm(costs, 8, 0.030)
    at_8 = costs.for_batch(8)
    assert at_8 is not None and at_8.plain == pytest.approx(0.030)
    # beside others rows cost more
    assert at_8.first_row == pytest.approx(0.010 * costs_module.PRIOR_FIRST_ROW_BESIDE)
    assert at_8.row == pytest.approx(0.010 * costs_module.PRIOR_ROW_BESIDE)
    assert costs_module.PRIOR_FIRST_ROW_BESIDE > costs_module.PRIOR_FIRST_ROW


def test_draft_costs_follow_the_steps_this_machine_times() -> None:
    costs = StepCosts()
    _warm(costs, 1, 0.010)
    # Here a first draft row costs 0.004 s and each further one 0.001 s.
    for _ in range(60):
        for rows in (1, 4, 9):
            costs.observe(1, 1, rows, 0.010 + 0.004 + 0.001 * (rows - 1))
    got = costs.for_batch(1)
    assert got is not None
    assert got.first_row == pytest.approx(0.004, rel=0.05)
    assert got.row == pytest.approx(0.001, rel=0.05)
    # Two drafting sequences in one step: each pays its first row.
    for _ in range(60):
        costs.observe(1, 2, 6, 0.010 + 2 * 0.004 + 4 * 0.001)
    got = costs.for_batch(1)
    assert got is not None and got.first_row == pytest.approx(0.004, rel=0.05)


def test_each_batch_size_learns_its_own_draft_costs() -> None:
    costs = StepCosts()
    _warm(costs, 1, 0.010)
    _warm(costs, 8, 0.030)
    for _ in range(60):  # one stream's rows are cheap here
        for rows in (1, 4, 9):
            costs.observe(1, 1, rows, 0.010 + 0.002 + 0.0005 * (rows - 1))
    at_8 = costs.for_batch(8)
    assert at_8 is not None  # eight streams have not drafted: the prior still holds
    assert at_8.first_row == pytest.approx(0.010 * costs_module.PRIOR_FIRST_ROW_BESIDE)
    assert at_8.row == pytest.approx(0.010 * costs_module.PRIOR_ROW_BESIDE)
    for _ in range(60):  # beside seven others a draft is a micro-batch of its own
        for rows in (1, 4, 9):
            costs.observe(8, 1, rows, 0.030 + 0.012 + 0.006 * (rows - 1))
    at_8 = costs.for_batch(8)
    at_1 = costs.for_batch(1)
    assert at_8 is not None and at_1 is not None
    assert at_8.first_row == pytest.approx(0.012, rel=0.05)
    assert at_8.row == pytest.approx(0.006, rel=0.05)
    assert at_1.first_row == pytest.approx(0.002, rel=0.05)


def test_a_preempted_draft_step_does_not_price_drafts_out() -> None:
    costs = StepCosts()
    _warm(costs, 1, 0.010)
    before = costs.for_batch(1)
    costs.observe(1, 1, 8, 5.0)  # descheduled for seconds in a draft step
    after = costs.for_batch(1)
    assert before is not None and after is not None
    assert after.first_row + 7 * after.row < 3 * (before.first_row + 7 * before.row)
    assert allot([Offer(0.99, 15)], 500, after) == [0]  # priced out for now...
    _warm(costs, 1, 0.010)
    assert allot([Offer(0.99, 15)], 500, costs.for_batch(1)) == [0]
    for _ in range(300):  # ...until plain steps have let that step fade
        costs.observe(1, 0, 0, 0.010)
    assert allot([Offer(0.99, 15)], 500, costs.for_batch(1))[0] > 0


def test_a_preempted_step_moves_the_plain_estimate_only_so_far() -> None:
    costs = StepCosts()
    _warm(costs, 1, 0.010)
    costs.observe(1, 0, 0, 5.0)  # the process was descheduled for seconds
    got = costs.for_batch(1)
    assert got is not None and got.plain < 0.015


def test_a_sequence_sits_out_longer_after_each_miss_in_a_row() -> None:
    backoff = Backoff()
    assert backoff.ready
    waits = []
    for _ in range(8):
        backoff.record(accepted=0)
        steps = 0
        while not backoff.ready:
            backoff.step()
            steps += 1
        waits.append(steps)
    assert waits == [2, 4, 8, 16, 32, 64, 64, 64]
    backoff.record(accepted=3)  # a draft that paid: the next miss waits briefly again
    backoff.record(accepted=0)
    assert backoff.wait == 2


def test_a_draft_that_paid_for_less_than_its_rows_is_a_miss() -> None:
    costs = _ceiling(1)
    assert price(costs, 1, 1) == pytest.approx(1.1)
    assert price(costs, 1, 5) == pytest.approx(3.1)
    assert price(_ceiling(8), 8, 1) == pytest.approx(1.1 / (5.2 / 8))
    backoff = Backoff(price=price(costs, 1, 5))
    backoff.record(accepted=3)  # 3 tokens for 3.1 tokens' time
    assert not backoff.ready
    backoff = Backoff(price=price(costs, 1, 5))
    backoff.record(accepted=4)
    assert backoff.ready


def test_an_unverified_draft_is_judged_by_the_tokens_that_come() -> None:
    shadow = Unverified()
    assert shadow.judge(5) is None  # nothing to judge
    shadow.start([5, 6, 7])
    assert shadow.pending
    assert shadow.judge(5) is None and shadow.judge(6) is None
    assert shadow.judge(9) == (3, 2)  # two right, the third wrong
    assert not shadow.pending
    shadow.start([5, 6])
    assert shadow.judge(5) is None
    assert shadow.judge(6) == (2, 2)  # all right
    shadow.start([5])
    assert shadow.judge(4) == (1, 0)
    shadow.start([5])
    shadow.drop()
    assert shadow.judge(5) is None


class _Prompt:
    def __init__(self, tokens: list[int], max_tokens: int) -> None:
        self.tokens, self.max_tokens = tokens, max_tokens


class _Sure:
    """Match rates of a sequence whose drafts keep being right."""

    def rate(self, matched: int) -> float:
        return 0.9999

    def record(self, matched: int, drafted: int, accepted: int) -> None:
        pass


class _Seq:
    """The fields of engine/native/sequence.Sequence that Speculator.draft reads."""

    def __init__(self, tokens: list[int]) -> None:
        self.prompt = _Prompt(tokens, 200)
        self.prefilling = False
        self.pending_token: int | None = tokens[-1]
        self.n_generated = 1
        self.n_past = len(tokens)
        self.lookup = NgramIndex(tokens)
        self.draft: list[int] = []
        self.acceptance = _Sure()
        self.unverified = Unverified()
        self.backoff = Backoff()


def _speculator_step(spec: Speculator, seq: _Seq, seconds: float) -> list[int]:
    spec.draft([seq], threads=2)  # type: ignore[list-item]
    drafted = list(seq.draft)
    spec.step_took(seconds)
    seq.draft = []
    return drafted


def test_the_engine_drafts_only_after_timing_its_own_plain_steps() -> None:
    spec = Speculator(enabled=True, batch_size=64, cell_limit=EXACT_CELLS)
    seq = _Seq([1, 2, 3, 4, 5, 6, 7, 8, 9, 1, 2, 3])
    got = [_speculator_step(spec, seq, 0.005) for _ in range(WARM_STEPS)]
    assert got == [[]] * WARM_STEPS  # not timed yet: nothing verified
    assert seq.unverified.pending  # but the would-be draft is judged for free
    assert _speculator_step(spec, seq, 0.005)[:3] == [4, 5, 6]
    # Another thread count is another machine as far as costs go.
    spec.draft([seq], threads=1)  # type: ignore[list-item]
    assert seq.draft == []


def test_a_sequence_that_missed_sits_out_the_next_steps() -> None:
    spec = Speculator(enabled=True, batch_size=64, cell_limit=EXACT_CELLS)
    seq = _Seq([1, 2, 3, 4, 5, 6, 7, 8, 9, 1, 2, 3])
    for _ in range(WARM_STEPS):
        _speculator_step(spec, seq, 0.005)
    assert _speculator_step(spec, seq, 0.012)
    assert seq.backoff.price > 1  # its rows cost more than one plain step's token
    seq.backoff.record(accepted=0)
    assert _speculator_step(spec, seq, 0.005) == []
    assert _speculator_step(spec, seq, 0.005) == []
    assert _speculator_step(spec, seq, 0.005)  # waited 2 steps


def test_past_the_cell_limit_only_a_build_without_one_drafts() -> None:
    """An unpatched llama.cpp rounds a lone long row differently from a draft's rows,
    so there a sequence past EXACT_CELLS stops drafting; the Makefile's build does not."""
    long_prompt = [*range(10, 10 + EXACT_CELLS), 1, 2, 3, 4, 5, 6, 7, 8, 9, 1, 2, 3]
    drafts = {}
    for limit in (EXACT_CELLS, None):
        spec = Speculator(enabled=True, batch_size=64, cell_limit=limit)
        seq = _Seq(long_prompt)
        for _ in range(WARM_STEPS):
            _speculator_step(spec, seq, 0.005)
        drafts[limit] = _speculator_step(spec, seq, 0.005)
    assert drafts[EXACT_CELLS] == []
    assert drafts[None][:3] == [4, 5, 6]
