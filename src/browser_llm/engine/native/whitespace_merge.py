"""The lone-whitespace trap of grammar sampling, and the token that heals it.

BPE writes a space and the `"` after it as one token (` "`). A model that takes a lone
`" "` after `"amount":` means a number to follow (SmolLM2 writes digits apart from their
space); when the schema wants a string, the grammar allows only tokens starting with `"`,
which the model has never seen after a lone space (the best at logprob -20), and it loses
the thread. At that rejection the sampler takes instead the rest of the merged token the
model rated best one step earlier (` "` -> `"`), so the text is what that token would
have written. Only a rejected token is replaced: an answer the grammar never corrects is
the same token for token.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

__all__ = ["Merge", "WhitespaceMerges"]

_WHITESPACE = frozenset(b" \t\n\r")
# What the grammar may allow after the whitespace, probed one single-character token each:
# printable ASCII and the whitespace characters, plus one non-ASCII character (a free
# string allows it, and a free string is never a trap).
_PROBE_CHARS = [chr(c) for c in range(0x20, 0x7F)] + ["\t", "\n", "\r", "é"]


@dataclass(frozen=True)
class Merge:
    """For one whitespace-only token W: the tokens W+r whose rest r is a token too."""

    merged: np.ndarray  # W+r token ids (int32)
    rests: np.ndarray  # the r of each, aligned (int32)
    next_chars: frozenset[str]  # every character the tokenizer writes merged after W


class WhitespaceMerges:
    """Per loaded model: whitespace-only tokens, their merged tokens, the probe tokens."""

    def __init__(self, n_vocab: int, piece: Callable[[int], bytes]) -> None:
        pieces = [piece(t) for t in range(n_vocab)]
        by_text: dict[bytes, int] = {}
        by_first: dict[int, list[int]] = {}
        for token, text in enumerate(pieces):
            by_text.setdefault(text, token)
            if text and text[0] in _WHITESPACE:
                by_first.setdefault(text[0], []).append(token)
        self._merges: dict[int, Merge] = {}
        for token, text in enumerate(pieces):
            if not text or not all(b in _WHITESPACE for b in text) or by_text[text] != token:
                continue
            longer = [
                t
                for t in by_first[text[0]]
                if len(pieces[t]) > len(text) and pieces[t].startswith(text)
            ]
            pairs = [(t, by_text.get(pieces[t][len(text) :])) for t in longer]
            kept = [(t, r) for t, r in pairs if r is not None]
            if kept:
                firsts = {_first_char(pieces[t][len(text) :]) for t in longer}
                self._merges[token] = Merge(
                    np.array([t for t, _ in kept], dtype=np.int32),
                    np.array([r for _, r in kept], dtype=np.int32),
                    frozenset(c for c in firsts if c),
                )
        probes = {c: by_text.get(c.encode()) for c in _PROBE_CHARS}
        self.probe_chars = [c for c, t in probes.items() if t is not None]
        self.probe_tokens = np.array([probes[c] for c in self.probe_chars], dtype=np.int32)

    def get(self, token: int) -> Merge | None:
        """The merges of a whitespace-only token (None: not one, or nothing merges with it)."""
        return self._merges.get(token)


def _first_char(data: bytes) -> str:
    for end in range(1, min(len(data), 4) + 1):
        try:
            return data[:end].decode("utf-8")
        except UnicodeDecodeError:
            continue
    return ""
