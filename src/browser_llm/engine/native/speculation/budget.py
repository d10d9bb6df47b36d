"""How many draft rows each sequence verifies in a step.

On a CPU a decode is compute-bound: every extra row costs a share of a step
(bench/speculation_ceiling.py measures it; ROW_COST is that share). A draft token is
worth its row only if the chance it is accepted beats what the row's time would give
the step's other work: with `tokens` expected from a step that costs `cost` row-units,
one more row pays when p > tokens * ROW_COST / cost. The i-th draft token of a
sequence is accepted with p = rate ** i, rate being that sequence's measured chance
that a draft token is right. So one stream alone drafts while its drafts keep being
right, and a batch already full of streams drafts only near-certain tokens.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["ROW_COST", "AcceptanceRate", "allot"]

# One more row in a decode, as a share of a one-row decode (SmolLM2-135M on 2 cores,
# bench/speculation_ceiling.py; the engine's batch of streams pays the same per row).
ROW_COST = 0.6
MAX_DRAFT = 15  # rows of one sequence in a decode stay below TILE_ROWS (kv/slots.py)
_PRIOR_RATE = 0.7  # before any evidence: grounded output repeats its prompt often
_PRIOR_WEIGHT = 2.0
_DECAY = 0.9  # per verified draft: recent drafts count most
PROBE_EVERY = 16  # steps between trial drafts of a sequence whose drafts stopped paying
_PROBE_LENGTH = 2


@dataclass
class AcceptanceRate:
    """A sequence's chance that a draft token is right (a decayed count of right and
    wrong draft tokens) and the steps since its last draft."""

    right: float = _PRIOR_RATE * _PRIOR_WEIGHT
    wrong: float = (1 - _PRIOR_RATE) * _PRIOR_WEIGHT
    idle_steps: int = 0

    @property
    def rate(self) -> float:
        return self.right / (self.right + self.wrong)

    def record(self, drafted: int, accepted: int) -> None:
        """After a verify: `accepted` of `drafted` tokens were right (the first wrong one
        ends a draft; the ones after it were never judged)."""
        self.right = self.right * _DECAY + accepted
        self.wrong = self.wrong * _DECAY + (1 if accepted < drafted else 0)
        self.idle_steps = 0


def allot(rates: list[tuple[float, int, bool]], plain_rows: int, max_rows: int) -> list[int]:
    """Draft rows per sequence for one step. `rates`: (acceptance rate, draft tokens on
    offer, probe due) per decoding sequence; `plain_rows`: the step's rows without
    drafts (one per decoding sequence, plus prompt chunks); `max_rows`: the batch's room."""
    rows = [0] * len(rates)
    tokens = float(len(rates))  # expected tokens from the step
    cost = 1.0 + ROW_COST * (plain_rows - 1)
    room = max_rows - plain_rows
    # Every (sequence, depth) by its chance of acceptance, best first: a sequence's
    # deeper tokens are less likely, so each sequence gets a prefix of its draft.
    offers = sorted(
        ((rate**depth, i, depth) for i, (rate, on_offer, _) in enumerate(rates)
         for depth in range(1, min(on_offer, MAX_DRAFT) + 1)),
        key=lambda o: (-o[0], o[2], o[1]),
    )  # fmt: skip
    for chance, i, depth in offers:
        if room <= 0 or chance <= tokens * ROW_COST / cost:
            break
        if depth == rows[i] + 1:
            rows[i] = depth
            tokens += chance
            cost += ROW_COST
            room -= 1
    if len(rates) == 1 and plain_rows == 1 and rows[0] == 0 and rates[0][2]:
        rows[0] = min(_PROBE_LENGTH, rates[0][1], room)  # a trial, alone in the batch
    return rows
