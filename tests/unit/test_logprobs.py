"""engine/native/logprobs.py on made-up logits rows: log_softmax_at against a float64 softmax,
ties, and which entries a LogprobTrail hands out when (no llama.cpp call: rows are given)."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest

from browser_llm.engine.native import logprobs as module
from browser_llm.engine.native.logprobs import LogprobTrail, log_softmax_at


def _reference(row: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
    r = row.astype(np.float64)
    return r - (r.max() + math.log(np.exp(r - r.max()).sum()))  # type: ignore[no-any-return]


@pytest.mark.parametrize("top_n", [0, 1, 5, 20])
def test_matches_a_float64_log_softmax(top_n: int) -> None:
    row = (np.random.default_rng(top_n).normal(size=49152) * 6).astype(np.float32)
    expected = _reference(row)
    chosen, top = log_softmax_at(row, 123, top_n)
    assert chosen == pytest.approx(expected[123], abs=1e-5)
    ranked = np.argsort(-expected, kind="stable")[:top_n]
    assert [t for t, _ in top] == [int(i) for i in ranked]
    assert np.allclose([lp for _, lp in top], expected[ranked], atol=1e-5)


def test_ties_rank_the_lower_id_first_as_argmax_does() -> None:
    row = np.zeros(10, dtype=np.float32)
    row[[7, 3, 5]] = 2.0
    _, top = log_softmax_at(row, 7, 2)
    assert [t for t, _ in top] == [3, 5] and int(row.argmax()) == 3


class _Model:
    ctx = None
    n_vocab = 4

    def piece(self, token: int) -> bytes:
        return f"<{token}>".encode()


def test_trail_releases_entries_once_their_text_is_given_out(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    rows = {0: np.array([0.0, 1.0, 2.0, 3.0], dtype=np.float32)}
    monkeypatch.setattr(module, "logits_row", lambda ctx, index, n: rows[index])
    trail = LogprobTrail(2, _Model())
    trail.record(0, 3, text_offset=0)
    trail.record(None, 1, text_offset=4)  # a forced closing token: no row, no logprob
    trail.record(0, 2, text_offset=9)
    assert trail.release(0) == ()  # nothing given out yet
    first, second = trail.release(5)
    assert (first.chosen.token, first.chosen.piece, first.text_offset) == (3, b"<3>", 0)
    assert [t.token for t in first.top] == [3, 2]
    assert second.chosen.logprob is None and second.top == ()
    [last] = trail.release_all()
    assert last.chosen.token == 2 and trail.release_all() == ()
