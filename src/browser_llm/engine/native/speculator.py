"""Speculative decoding in the engine's steps: before a step, each decoding sequence
may get a draft from its own prompt and output (speculation/drafts.py), as many tokens
as speculation/budget.py finds worth a row at the costs speculation/costs.py has
measured on this machine (the engine reports each decode-only step's time); the step
decodes the pending token and the draft in one run of rows; after it, the rows are
sampled in order and the draft tokens the samples confirm are given out like any token
(speculation/verify.py), and the cells of the rest are removed.

Sequences with a grammar (JSON mode, tools) do not speculate: their tokens are checked
against the grammar one at a time (sampling.py), and the JSON closing budget decides
per token whether the output can still close (token_output.py).

Drafts are verified only where the result is the one decoding without them gives, bit
for bit. Unpatched, llama.cpp's CPU flash attention computes a row alone in a
micro-batch (one sequence, one query row) over a KV view of 512 cells or more by
splitting the cells among the threads and merging the parts, and every other row cell
by cell in one pass; the two round differently. The KV view is the sequence's cells
rounded up to 256, so with such a build only sequences whose cells stay within
EXACT_CELLS draft. The Makefile's build never splits (ggml/kernels.py), and every sequence
may draft."""

from __future__ import annotations

from browser_llm.engine.native.ggml.kernels import batch_invariant_attention
from browser_llm.engine.native.model import LlamaModel
from browser_llm.engine.native.sequence import Sequence
from browser_llm.engine.native.speculation.budget import MAX_DRAFT, Offer, allot, price
from browser_llm.engine.native.speculation.costs import StepCosts
from browser_llm.engine.native.speculation.drafts import NgramIndex
from browser_llm.engine.native.speculation.verify import confirmed
from browser_llm.engine.native.token_output import TokenOutput

__all__ = ["EXACT_CELLS", "Speculator", "exact_cell_limit"]

EXACT_CELLS = 256  # llama.cpp pads a KV view to 256 cells; 512 starts the split path


def exact_cell_limit() -> int | None:
    """The cells within which a draft's rows round as a plain step's row does with
    this llama.cpp build; None: at any length."""
    return None if batch_invariant_attention() else EXACT_CELLS


class Speculator:
    def __init__(self, enabled: bool, batch_size: int, cell_limit: int | None) -> None:
        self.enabled = enabled
        self._batch_size = batch_size
        self._cell_limit = cell_limit  # EXACT_CELLS, or None where any length is exact
        self.drafted = 0  # draft tokens verified since the engine started
        self.accepted = 0  # of those, given out
        self._costs: dict[int, StepCosts] = {}  # by thread count
        self._step: tuple[StepCosts, int, int, int] | None = None  # this step's shape

    def readings(self) -> dict[str, int]:
        return {"draft_tokens": self.drafted, "draft_tokens_accepted": self.accepted}

    def start(self, seq: Sequence) -> None:
        """Makes a new sequence speculate, unless its output is grammar-constrained or
        its prompt alone fills the cell limit."""
        limit = self._cell_limit
        short = limit is None or len(seq.prompt.tokens) < limit - 1
        if self.enabled and short and seq.handle.request.params.grammar is None:
            seq.lookup = NgramIndex(seq.prompt.tokens)

    def draft(self, running: list[Sequence], threads: int) -> None:
        """Gives this step's decoding sequences their drafts. None while a prompt is
        being read: its chunk already fills the step."""
        self._step = None
        if not self.enabled or any(seq.prefilling for seq in running):
            return
        decoding = [seq for seq in running if seq.pending_token is not None]
        costs = self._costs.setdefault(threads, StepCosts())
        self._step = (costs, len(decoding), 0, 0)
        offers: list[tuple[list[int], int]] = []  # (draft, match length) per sequence
        ready: list[bool] = []  # not sitting out this step (budget.Backoff)
        for seq in decoding:
            left = seq.prompt.max_tokens - seq.n_generated - 1  # tokens after the pending one
            limit = min(left, MAX_DRAFT)
            if self._cell_limit is not None:
                limit = min(limit, self._cell_limit - seq.n_past - 1)  # after the pending one
            offers.append(seq.lookup.lookup(limit) if seq.lookup is not None else ([], 0))
            ready.append(seq.backoff.ready)
            seq.backoff.step()
        if not any(offer for offer, _ in offers):
            return
        batch_costs = costs.for_batch(len(decoding))
        if batch_costs is None:  # not measured yet: no drafts, only learning
            rows = [0] * len(decoding)
        else:
            bids = [
                Offer(seq.acceptance.rate(matched), len(offer) if free else 0)
                for seq, (offer, matched), free in zip(decoding, offers, ready, strict=True)
            ]
            rows = allot(bids, self._batch_size - len(decoding), batch_costs)
        for seq, (offer, matched), n in zip(decoding, offers, rows, strict=True):
            seq.draft, seq.draft_matched = offer[:n], matched
            if n:
                assert batch_costs is not None
                seq.backoff.price = price(batch_costs, len(decoding), n)
                seq.unverified.drop()
            elif offer:  # judged by the next token, at this step's match length
                seq.unverified.start(offer[:1], matched)
        drafting = sum(1 for n in rows if n)
        self._step = (costs, len(decoding), drafting, sum(rows))

    def step_took(self, seconds: float) -> None:
        """The step just run only decoded (no prompt chunk) and took `seconds`, from
        its drafts to the last token given out."""
        if self._step is not None:
            costs, streams, drafting, rows = self._step
            costs.observe(streams, drafting, rows, seconds)
            self._step = None

    def verify(self, model: LlamaModel, output: TokenOutput, seq: Sequence, index: int) -> None:
        """Samples the sequence's rows from batch output `index` on and gives out the
        tokens they confirm, in order, until one ends the sequence."""
        assert seq.lookup is not None
        draft, seq.draft = seq.draft, []
        tokens = confirmed(draft, lambda row: seq.sampler.sample(model.ctx, index + row))
        if draft:
            accepted = len(tokens) - 1
            seq.acceptance.record(seq.draft_matched, len(draft), accepted)
            seq.backoff.record(accepted)
            self.drafted += len(draft)
            self.accepted += accepted
            keep = seq.n_past - len(draft) + accepted  # the pending token and accepted ones
            if keep < seq.n_past:
                if not model.trim(seq.seq_id, keep):
                    raise RuntimeError("llama.cpp could not remove rejected draft cells")
                seq.n_past = keep
        else:
            judged = seq.unverified.judge(tokens[0])
            if judged is not None:
                seq.acceptance.record(seq.unverified.matched, *judged)
        for row, token in enumerate(tokens):
            seq.pending_token = None
            output.on_token(model, seq, token, index + row)
            if seq.pending_token is None:
                return  # ended: the rest is never given out
            seq.lookup.append(token)
