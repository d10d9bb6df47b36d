"""What a decode step costs on the machine the engine runs on, learnt from its own steps.

A draft pays only if its expected accepted tokens outweigh its extra rows, and what a
row costs depends on the CPU, the thread count and the batch: constants measured on one
machine are wrong on the next. So the engine times every step that only decodes (no
prompt chunk in it), with the speculation work it does (lookup, rows, sampling, removing
rejected cells) included:

- a plain step (no drafts) of n streams: a moving average per n;
- a step with drafts: its time over the plain step of the same n, fitted as
  `first_row * drafting sequences + row * (draft rows - drafting sequences)`, by least
  squares over recent draft steps, starting from the ceiling's ratios
  (bench/speculation_ceiling.py: the first draft row of a sequence costs ~1.1 one-row
  decodes, a further one ~0.5) scaled by the measured one-row step, with a few
  pseudo-steps' weight that ages like a real step's, so real steps soon decide.

Nothing drafts at a batch size whose plain step has not been measured yet."""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

__all__ = ["DraftCosts", "StepCosts"]

PRIOR_FIRST_ROW = 1.1  # in one-row decodes
PRIOR_ROW = 0.5
STREAM_ROW = 0.6  # a further stream's row, in one-row decodes (for the unit only)
WARM_STEPS = 8  # plain steps of a batch size timed before its drafts are judged
_PLAIN_ALPHA = 0.1
_OUTLIER = 3.0  # a step this many times the estimate was preempted: clipped
_PRIOR_WEIGHT = 4.0  # pseudo-steps behind the prior draft costs; they age like steps
_PRIOR_KEPT = 0.05  # ...down to this, so a cost no step has told apart stays defined
_DECAY = 0.97  # per draft step: recent steps count most
_FLOOR = 0.05  # no row is free: at least this share of a one-row decode


class DraftCosts(NamedTuple):
    """Seconds, for one step of a given batch size."""

    plain: float  # the step without drafts
    first_row: float  # each drafting sequence's first draft row
    row: float  # each further draft row


@dataclass
class _Average:
    value: float = 0.0
    count: int = 0

    def add(self, x: float) -> None:
        self.count += 1
        if self.count > 1:
            x = min(x, _OUTLIER * self.value)
        weight = max(1.0 / self.count, _PLAIN_ALPHA)  # a mean at first, then moving
        self.value += weight * (x - self.value)


class StepCosts:
    """Step timings of one thread count (a new count starts a new StepCosts)."""

    def __init__(self) -> None:
        self._plain: dict[int, _Average] = {}
        # Decayed normal equations of extra = first_row * s + row * r (r = rows - s).
        self._ss = self._sr = self._rr = self._sy = self._ry = 0.0
        self.draft_steps = 0

    def plain(self, streams: int) -> float | None:
        average = self._plain.get(streams)
        return average.value if average is not None and average.count >= WARM_STEPS else None

    def unit(self) -> float | None:
        """One row's decode: the smallest measured batch's plain step per stream row."""
        for streams in sorted(self._plain):
            plain = self.plain(streams)
            if plain is not None:
                return plain / (1 + STREAM_ROW * (streams - 1))
        return None

    def for_batch(self, streams: int) -> DraftCosts | None:
        plain, unit = self.plain(streams), self.unit()
        if plain is None or unit is None:
            return None
        w = max(_PRIOR_WEIGHT * _DECAY**self.draft_steps, _PRIOR_KEPT)
        a, b, d = self._ss + w, self._sr, self._rr + w
        y1 = self._sy + w * PRIOR_FIRST_ROW * unit
        y2 = self._ry + w * PRIOR_ROW * unit
        det = a * d - b * b  # > 0: the prior makes the system positive definite
        first_row = (d * y1 - b * y2) / det
        row = (a * y2 - b * y1) / det
        floor = _FLOOR * unit
        return DraftCosts(plain, max(first_row, floor), max(row, floor))

    def observe(self, streams: int, drafting: int, rows: int, seconds: float) -> None:
        """A decode-only step of `streams` sequences, `drafting` of them with `rows`
        draft rows in all, took `seconds`."""
        if drafting == 0:
            self._plain.setdefault(streams, _Average()).add(seconds)
            return
        plain = self.plain(streams)
        if plain is None:
            return
        extra = min(seconds, _OUTLIER * (plain + rows * plain)) - plain
        s, r = float(drafting), float(rows - drafting)
        k = _DECAY
        self._ss = k * self._ss + s * s
        self._sr = k * self._sr + s * r
        self._rr = k * self._rr + r * r
        self._sy = k * self._sy + s * extra
        self._ry = k * self._ry + r * extra
        self.draft_steps += 1
