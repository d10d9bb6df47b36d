"""How many draft rows each sequence verifies in a step.

On a CPU a decode is compute-bound, so draft rows are not free: what they cost on this
machine comes from the engine's own step timings (costs.py). A sequence that drafts
puts rows of unequal count in the batch, which llama.cpp splits into one more
micro-batch, so each drafting sequence's first row costs more than a further one. The
i-th draft token of a sequence is accepted with chance rate ** i, rate being that
sequence's measured chance that a draft token is right after a match as long as this
draft's (MatchRates: a few classes of match length, each learnt apart), learnt from its
verified drafts and, while it does not draft, from the drafts it would have made
(compared with the tokens that came: no cost). A step takes the drafts, most likely
first, that maximise its expected tokens per second, and drafts at all only if that beats
the plain step by MIN_GAIN: one stream whose drafts keep being right drafts long, a batch
full of streams drafts little or nothing, and a sequence whose drafts would fail does not draft. A
sequence whose verified draft did not pay for its rows waits before it drafts again
(Backoff), twice as long after each such miss in a row.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass
from typing import NamedTuple

from browser_llm.engine.native.speculation.costs import DraftCosts

__all__ = ["MAX_DRAFT", "AcceptanceRate", "Backoff", "MatchRates", "Offer", "allot", "price"]

MIN_GAIN = 1.05  # the costs and rates are estimates: a draft must win clearly
# Rows of one sequence in a decode stay below TILE_ROWS (kv/slots.py); after long matches
# drafts of 15 were nearly all right, so the cap, not the model, ended them.
MAX_DRAFT = 31
# Classes of match length (drafts.lookup), by their first length: 1, 2, 3-4, 5-8, 9-16, 17+,
# and the chance that a draft token is right in each before a sequence has told: the
# first draft token's on the grounded prompts (bench/speculation_oracle.py: 0.33, 0.52,
# 0.56, 0.82, 0.95, 0.98), rounded down. A long match pays from its first step instead of
# after a dozen steps of evidence; the judged tokens soon outweigh these.
_MATCH_CLASSES = (1, 2, 3, 5, 9, 17)
_CLASS_PRIORS = (0.3, 0.5, 0.5, 0.8, 0.9, 0.95)
_PRIOR_RATE = 0.5  # a rate with no class
_PRIOR_WEIGHT = 2.0
_DECAY = 0.9  # per judged draft: recent drafts count most
_MAX_WAIT = 64  # steps a sequence waits after misses in a row, at most


@dataclass
class AcceptanceRate:
    """A sequence's chance that a draft token is right: decayed counts of right and
    wrong draft tokens, verified or not."""

    right: float = _PRIOR_RATE * _PRIOR_WEIGHT
    wrong: float = (1 - _PRIOR_RATE) * _PRIOR_WEIGHT

    @property
    def rate(self) -> float:
        return self.right / (self.right + self.wrong)

    def record(self, drafted: int, accepted: int) -> None:
        """A draft was judged: `accepted` of `drafted` tokens were right (the first wrong
        one ends a draft; the ones after it were never judged)."""
        self.right = self.right * _DECAY + accepted
        self.wrong = self.wrong * _DECAY + (1 if accepted < drafted else 0)


class MatchRates:
    """A sequence's AcceptanceRate for each class of match length."""

    def __init__(self) -> None:
        self._rates = [
            AcceptanceRate(p * _PRIOR_WEIGHT, (1 - p) * _PRIOR_WEIGHT) for p in _CLASS_PRIORS
        ]

    def _of(self, matched: int) -> AcceptanceRate:
        return self._rates[bisect.bisect_right(_MATCH_CLASSES, matched) - 1 if matched else 0]

    def rate(self, matched: int) -> float:
        return self._of(matched).rate

    def record(self, matched: int, drafted: int, accepted: int) -> None:
        self._of(matched).record(drafted, accepted)


@dataclass
class Backoff:
    """Steps a sequence sits out of verified drafting after verified drafts that did
    not pay: fewer tokens accepted than their rows cost (`price`, in tokens)."""

    misses: int = 0  # such drafts in a row
    wait: int = 0  # steps left to sit out
    price: float = 0.0  # accepted tokens the draft being verified must give to pay

    @property
    def ready(self) -> bool:
        return self.wait == 0

    def step(self) -> None:
        self.wait = max(0, self.wait - 1)

    def record(self, accepted: int) -> None:
        if accepted and accepted >= self.price:
            self.misses = 0
            return
        self.misses += 1
        self.wait = min(2**self.misses, _MAX_WAIT)


def price(costs: DraftCosts, streams: int, rows: int) -> float:
    """Accepted tokens that pay for a sequence's `rows` draft rows in a step of `streams`
    sequences: its extra seconds over what a plain step spends per token."""
    extra = costs.first_row + costs.row * (rows - 1)
    return extra / (costs.plain / streams)


class Offer(NamedTuple):
    rate: float  # the sequence's chance that a draft token is right
    tokens: int  # draft tokens found for it (0: it may not draft this step)


def allot(offers: list[Offer], room: int, costs: DraftCosts) -> list[int]:
    """Draft rows per decoding sequence (one offer each) for one step with `room`
    rows to spare in the batch, given what this batch size's steps cost."""
    n = len(offers)
    rows = [0] * n
    # Every (sequence, depth) by its chance, best first: a sequence's deeper tokens
    # are less likely, so the best m always hold a prefix of each sequence's draft.
    chances = sorted(
        ((o.rate**depth, depth, i) for i, o in enumerate(offers)
         for depth in range(1, min(o.tokens, MAX_DRAFT) + 1)),
        key=lambda c: (-c[0], c[1], c[2]),
    )[: max(room, 0)]  # fmt: skip
    tokens = float(n)
    seconds = costs.plain
    best, best_m = tokens / seconds * MIN_GAIN, 0
    for m, (chance, depth, _) in enumerate(chances, start=1):
        tokens += chance
        seconds += costs.first_row if depth == 1 else costs.row
        if tokens / seconds > best:
            best, best_m = tokens / seconds, m
    for _, depth, i in chances[:best_m]:
        rows[i] = max(rows[i], depth)
    return rows
