"""Speculation's pure parts: prompt-lookup drafts, the acceptance rule, draft budgets."""

from __future__ import annotations

import pytest

from browser_llm.engine.native.speculation.budget import MAX_DRAFT, AcceptanceRate, Offer, allot
from browser_llm.engine.native.speculation.drafts import NgramIndex
from browser_llm.engine.native.speculation.verify import Unverified, confirmed


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


def test_the_rate_falls_with_wrong_drafts_and_rises_with_right_ones() -> None:
    rate = AcceptanceRate()
    start = rate.rate
    rate.record(drafted=4, accepted=0)
    assert rate.rate < start
    low = rate.rate
    for _ in range(5):
        rate.record(drafted=8, accepted=8)
    assert rate.rate > low


def test_one_stream_drafts_long_when_its_drafts_are_right() -> None:
    assert allot([Offer(0.999, 15)], room=500) == [MAX_DRAFT]
    assert allot([Offer(0.98, 15)], room=500)[0] >= 10
    sure = allot([Offer(0.9, 15)], room=500)[0]
    assert 2 <= sure < MAX_DRAFT
    assert allot([Offer(0.6, 15)], room=500) == [0]  # a loss: no draft


def test_a_full_batch_drafts_only_near_certain_tokens() -> None:
    assert allot([Offer(0.9, 8)] * 8, room=500) == [0] * 8
    rows = allot([Offer(0.999, 15)] + [Offer(0.5, 15)] * 7, room=500)
    assert rows[0] > 0 and rows[1:] == [0] * 7


def test_drafts_fit_the_room_and_what_was_found() -> None:
    assert allot([Offer(0.99, 3)], room=500) == [3]
    assert allot([Offer(0.99, 15)], room=4) == [4]
    assert allot([Offer(0.99, 15)], room=0) == [0]


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
