"""Which drafted tokens a verify decode confirms. Row 0 holds the sequence's pending
token and row i its i-th draft token; each row's logits give the token after it. The
token sampled from row i (with the request's own sampler chain, in order) is kept; the
draft token in row i+1 is accepted only if it equals it. For a draft that is one fixed
token (a point mass), this is speculative sampling's acceptance rule, so the output has
the distribution it would have without speculation; under greedy decoding, the same
tokens."""

from __future__ import annotations

from collections.abc import Callable

__all__ = ["Unverified", "confirmed"]


def confirmed(draft: list[int], sample: Callable[[int], int]) -> list[int]:
    """The tokens a verify step gives out: the sampled token of each row while the draft
    agrees, ending with the first that differs (or the one after a fully accepted draft).
    `sample(row)` samples row `row`; the rows are sampled in order, each at most once."""
    out: list[int] = []
    for row in range(len(draft) + 1):
        token = sample(row)
        out.append(token)
        if row == len(draft) or token != draft[row]:
            break
    return out


class Unverified:
    """A draft a sequence did not verify, judged token by token against the tokens that
    came instead, so that its acceptance rate learns while drafting does not pay."""

    def __init__(self) -> None:
        self._draft: list[int] = []
        self._right = 0
        self.matched = 0  # the match length the draft came from (drafts.lookup)

    @property
    def pending(self) -> bool:
        return bool(self._draft)

    def start(self, draft: list[int], matched: int = 0) -> None:
        self._draft, self._right, self.matched = list(draft), 0, matched

    def drop(self) -> None:
        self._draft = []

    def judge(self, token: int) -> tuple[int, int] | None:
        """The next token came: (drafted, accepted) once the draft is judged, else None."""
        if not self._draft:
            return None
        if self._draft[self._right] != token:
            judged = (self._right + 1, self._right)
        elif self._right + 1 == len(self._draft):
            judged = (self._right + 1, self._right + 1)
        else:
            self._right += 1
            return None
        self._draft = []
        return judged
