"""What a decode step costs on the machine the engine runs on, learnt from its own steps.

A draft pays only if its expected accepted tokens outweigh its extra rows, and what a
row costs depends on the CPU, the thread count and the batch: constants measured on one
machine are wrong on the next. So the engine times every step that only decodes (no
prompt chunk in it), with the speculation work it does (lookup, rows, sampling, removing
rejected cells) included:

- a plain step (no drafts) of n streams: a moving average per n;
- a step with drafts: its time over the plain step of the same n, fitted per n as
  `first_row * drafting sequences + row * (draft rows - drafting sequences)`, by least
  squares over recent draft steps of that n, starting from the ceiling's ratios
  (bench/speculation_ceiling.py with the Makefile's build: the first draft row of a
  sequence costs ~0.8 one-row decodes alone and ~1.2 beside other streams, a further one
  ~0.35 alone and ~0.4 beside others) scaled by the measured one-row step, with a few
  pseudo-steps' weight that ages like a real step's, so real steps soon decide. Per n:
  beside other streams a draft's rows are a micro-batch of their own, which costs what
  one stream's rows cost alone only roughly, and one stream's cheap rows must not make
  eight streams draft.

A draft step preempted by another process counts as at most a few times its estimate,
and every plain step lets a size's fit fade toward the prior: only draft steps renew it,
so without the fading one bad estimate would stop a size drafting for good.

Nothing drafts at a batch size whose plain step has not been measured yet."""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

__all__ = ["DraftCosts", "StepCosts"]

PRIOR_FIRST_ROW = 0.8  # in one-row decodes, one stream alone
PRIOR_ROW = 0.35
# Beside other streams a draft's rows cost more (bench/speculation_ceiling.py, beside 4
# and 8 streams: the first ~1.2 one-row decodes, each further one ~0.4).
PRIOR_FIRST_ROW_BESIDE = 1.2
PRIOR_ROW_BESIDE = 0.4
STREAM_ROW = 0.5  # a further stream's row, in one-row decodes (for the unit only)
WARM_STEPS = 8  # plain steps of a batch size timed before its drafts are judged
_PLAIN_ALPHA = 0.1
_OUTLIER = 3.0  # a step this many times the estimate was preempted: clipped
_PRIOR_WEIGHT = 4.0  # pseudo-steps behind the prior draft costs; they age like steps
_PRIOR_KEPT = 0.05  # ...down to this, so a cost no step has told apart stays defined
_DECAY = 0.97  # per draft step: recent steps count most
_FADE = 0.98  # per plain step: a fit no draft step renews goes back to the prior
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


@dataclass
class _DraftFit:
    """Decayed normal equations of extra = first_row * s + row * r (r = rows - s), for the
    draft steps of one batch size."""

    ss: float = 0.0
    sr: float = 0.0
    rr: float = 0.0
    sy: float = 0.0
    ry: float = 0.0
    steps: int = 0

    def fade(self) -> None:
        """A plain step of this size: what draft steps told fades toward the prior, so a
        size that stopped drafting on a bad estimate tries again in time."""
        k = _FADE
        self.ss, self.sr, self.rr, self.sy, self.ry = (
            k * self.ss,
            k * self.sr,
            k * self.rr,
            k * self.sy,
            k * self.ry,
        )

    def add(self, s: float, r: float, extra: float) -> None:
        k = _DECAY
        self.ss = k * self.ss + s * s
        self.sr = k * self.sr + s * r
        self.rr = k * self.rr + r * r
        self.sy = k * self.sy + s * extra
        self.ry = k * self.ry + r * extra
        self.steps += 1

    def solve(self, first_row: float, row: float) -> tuple[float, float]:
        """(first_row, row) in seconds from the prior ones, the prior's weight aged by the
        steps seen."""
        w = max(_PRIOR_WEIGHT * _DECAY**self.steps, _PRIOR_KEPT)
        a, b, d = self.ss + w, self.sr, self.rr + w
        y1 = self.sy + w * first_row
        y2 = self.ry + w * row
        det = a * d - b * b  # > 0: the prior makes the system positive definite
        return (d * y1 - b * y2) / det, (a * y2 - b * y1) / det


class StepCosts:
    """Step timings of one thread count (a new count starts a new StepCosts)."""

    def __init__(self) -> None:
        self._plain: dict[int, _Average] = {}
        self._drafts: dict[int, _DraftFit] = {}  # by batch size

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
        if streams == 1:
            prior = (PRIOR_FIRST_ROW * unit, PRIOR_ROW * unit)
        else:
            prior = (PRIOR_FIRST_ROW_BESIDE * unit, PRIOR_ROW_BESIDE * unit)
        first_row, row = self._drafts.get(streams, _DraftFit()).solve(*prior)
        floor = _FLOOR * unit
        return DraftCosts(plain, max(first_row, floor), max(row, floor))

    def observe(self, streams: int, drafting: int, rows: int, seconds: float) -> None:
        """A decode-only step of `streams` sequences, `drafting` of them with `rows`
        draft rows in all, took `seconds`."""
        if drafting == 0:
            self._plain.setdefault(streams, _Average()).add(seconds)
            if streams in self._drafts:
                self._drafts[streams].fade()
            return
        now = self.for_batch(streams)
        if now is None:
            return
        s, r = float(drafting), float(rows - drafting)
        # A step another process preempted says little about rows: it counts as at most
        # a few times the estimate (fade() undoes what it still tells, in time).
        expected = now.first_row * s + now.row * r
        extra = min(seconds - now.plain, _OUTLIER * expected)
        self._drafts.setdefault(streams, _DraftFit()).add(s, r, extra)
