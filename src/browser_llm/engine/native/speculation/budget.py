"""How many draft rows each sequence verifies in a step.

On a CPU a decode is compute-bound, so draft rows are not free: measured with
bench/speculation_ceiling.py (SmolLM2-135M, 2 threads), the first draft row of a step
costs about a one-row decode more (a single row takes llama.cpp's matrix-vector path,
two rows its matrix-matrix one), each further draft row about half a one-row decode,
and each further stream's row about 0.6. A sequence that drafts puts rows of unequal
count in the batch, which llama.cpp splits into one more micro-batch: each drafting
sequence's first row is charged as a first draft row. The i-th draft token of a sequence is accepted
with chance rate ** i, rate being that sequence's measured chance that a draft token is
right, learnt from its verified drafts and, while it does not draft, from the drafts it
would have made (compared with the tokens that came: no cost). A step takes the drafts,
most likely first, that maximise its expected tokens per unit of time: one stream whose
drafts keep being right drafts long, a batch full of streams drafts little or nothing (a
step must gain MIN_GAIN to draft at all: the costs are a model), and a sequence whose
drafts would fail does not draft.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

__all__ = ["MAX_DRAFT", "AcceptanceRate", "Offer", "allot"]

# Costs in one-row decodes (bench/speculation_ceiling.py).
FIRST_DRAFT_ROW = 1.1
DRAFT_ROW = 0.5
STREAM_ROW = 0.6
MIN_GAIN = 1.05
MAX_DRAFT = 15  # rows of one sequence in a decode stay below TILE_ROWS (kv/slots.py)
_PRIOR_RATE = 0.5  # before any evidence (the first unverified drafts give some soon)
_PRIOR_WEIGHT = 2.0
_DECAY = 0.9  # per judged draft: recent drafts count most


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


class Offer(NamedTuple):
    rate: float  # the sequence's chance that a draft token is right
    tokens: int  # draft tokens found for it


def allot(offers: list[Offer], room: int) -> list[int]:
    """Draft rows per decoding sequence (one offer each) for one step with `room`
    rows to spare in the batch."""
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
    cost = 1.0 + STREAM_ROW * (n - 1)
    plain = tokens / cost
    best, best_m = plain * MIN_GAIN, 0
    for m, (chance, depth, _) in enumerate(chances, start=1):
        tokens += chance
        cost += FIRST_DRAFT_ROW if depth == 1 else DRAFT_ROW
        if tokens / cost > best:
            best, best_m = tokens / cost, m
    for _, depth, i in chances[:best_m]:
        rows[i] = max(rows[i], depth)
    return rows
