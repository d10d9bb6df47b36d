"""Log-probabilities of generated tokens, for requests that ask for them.

They are the log-softmax of the raw logits row llama.cpp produced for the token's
position: the model's own distribution, before temperature, top-k/top-p, penalties,
an end-of-generation ban or a grammar (what OpenAI and llama-server with
post_sampling_probs=false report). The row is the one the sampler read: no second
llama.cpp call. Requests without logprobs never reach this module.

Entries are held until the text of their token is given out (TextStream holds back
cut characters and possible stop strings), so each text event carries the entries of
the tokens whose text it begins, and tokens wholly inside a dropped stop string get none.
"""

from __future__ import annotations

from typing import Any, Protocol

import numpy as np

from browser_llm.core.types import TokenChoice, TokenLogprob
from browser_llm.engine.native.sampling import logits_row

__all__ = ["LogprobTrail", "log_softmax_at"]

MAX_TOP_LOGPROBS = 20  # OpenAI's bound; the API refuses more

Row = np.ndarray[Any, np.dtype[np.float32]]


class _Model(Protocol):
    ctx: Any
    n_vocab: int

    def piece(self, token: int) -> bytes: ...


def log_softmax_at(row: Row, token: int, top_n: int) -> tuple[float, list[tuple[int, float]]]:
    """The log-probability of `token` and the `top_n` most likely (id, logprob), best
    first (ties: lower id first, as the greedy argmax picks). O(n_vocab)."""
    peak = float(row.max())
    # exp in float32 (the row's type), summed in float64: within 1e-6 of a float64 softmax.
    log_norm = peak + float(np.log(np.exp(row - peak).sum(dtype=np.float64)))
    chosen = float(row[token]) - log_norm
    if top_n <= 0:
        return chosen, []
    top_n = min(top_n, row.shape[0])
    # The n-th largest value by np.partition, then the ids at or above it: O(n_vocab) and
    # ~35 us here against ~55 us for np.argpartition, which moves an index array too.
    threshold = np.partition(row, -top_n)[-top_n]
    ids = np.flatnonzero(row >= threshold)  # more than top_n only on ties
    order = np.lexsort((ids, -row[ids]))[:top_n]
    return chosen, [(int(i), float(row[i]) - log_norm) for i in ids[order]]


class LogprobTrail:
    """One sequence's scored tokens, waiting until their text is given out."""

    def __init__(self, top_n: int, model: _Model) -> None:
        self.top_n = min(max(top_n, 0), MAX_TOP_LOGPROBS)
        self._model = model
        self._held: list[tuple[int, TokenLogprob]] = []

    def record(self, output_index: int | None, token: int, text_offset: int) -> None:
        """Scores a generated token from the logits row of its position (the last decode's
        output `output_index`); None: no row holds it (a forced closing token after the
        first, never decoded), so it is recorded without a log-probability."""
        if output_index is None:
            self._hold(token, None, [], text_offset)
            return
        row = logits_row(self._model.ctx, output_index, self._model.n_vocab)
        logprob, top = log_softmax_at(row, token, self.top_n)
        self._hold(token, logprob, top, text_offset)

    def _hold(
        self, token: int, logprob: float | None, top: list[tuple[int, float]], offset: int
    ) -> None:
        piece = self._model.piece
        entry = TokenLogprob(
            chosen=TokenChoice(token, piece(token), logprob),
            top=tuple(TokenChoice(t, piece(t), lp) for t, lp in top),
            text_offset=offset,
        )
        self._held.append((offset, entry))

    def release(self, emitted_chars: int) -> tuple[TokenLogprob, ...]:
        """Entries of the tokens whose text begins before `emitted_chars` (given out)."""
        held = self._held
        n = 0
        while n < len(held) and held[n][0] < emitted_chars:
            n += 1
        if n == 0:
            return ()
        out = tuple(entry for _, entry in held[:n])
        del held[:n]
        return out

    def release_all(self) -> tuple[TokenLogprob, ...]:
        """At the end without a stop string: every token's text has been given out."""
        out = tuple(entry for _, entry in self._held)
        self._held.clear()
        return out
