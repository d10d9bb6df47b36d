"""Budget-aware closing: grammar-constrained (JSON) output that always ends complete.

Each grammar sequence carries a JsonBudget: where its text stands in the grammar
(grammar/walk.py) and how many tokens the shortest completion from there
costs. Before a sampled token is taken, the engine asks whether the completion
after it still fits in what is left of max_tokens; when it does not, the token is
dropped and the completion from the current state is emitted instead, so the output
ends complete at max_tokens at the latest. The walk is one dict lookup per character
and the cost one per state once seen, so it costs nothing measurable per token.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from typing import Protocol

from browser_llm.core.errors import ValidationError
from browser_llm.grammar.gbnf import GrammarSyntaxError, parse_gbnf
from browser_llm.grammar.walk import GrammarWalker, WalkState

__all__ = ["ClosingCatalog", "JsonBudget"]

logger = logging.getLogger(__name__)

_WALKERS_KEPT = 16  # grammars (schemas) whose walkers stay warm
_TOKENIZED_KEPT = 50_000  # closing texts whose tokens stay cached


class _Vocab(Protocol):
    n_vocab: int

    def tokenize(self, text: str, add_special: bool, parse_special: bool = ...) -> list[int]: ...

    def piece(self, token: int) -> bytes: ...


class _Sampler(Protocol):
    def force(self, token: int) -> bool: ...


def _continuation(pending: bytes) -> bytes:
    """Bytes that finish a UTF-8 character cut after `pending` (lowest valid, no surrogate)."""
    lead = pending[0]
    size = 2 if lead < 0xE0 else 3 if lead < 0xF0 else 4
    out = bytearray()
    for i in range(len(pending), size):
        low = 0x80
        if i == 1:  # the second byte's range depends on the lead (RFC 3629)
            low = {0xE0: 0xA0, 0xF0: 0x90}.get(lead, 0x80)
        out.append(low)
    return bytes(out)


def _split_utf8(data: bytes) -> tuple[str, bytes]:
    """Text of the complete characters, and the bytes of a character still cut short."""
    cut = len(data)
    for back in range(1, min(4, len(data)) + 1):
        byte = data[-back]
        if byte & 0xC0 == 0x80:
            continue  # a continuation byte: keep looking for the lead
        if byte >= 0xC0:
            size = 2 if byte < 0xE0 else 3 if byte < 0xF0 else 4
            if size > back:
                cut = len(data) - back
        break
    return data[:cut].decode("utf-8"), data[cut:]


class ClosingCatalog:
    """Per loaded model: grammar walkers by grammar text, and closing texts as tokens."""

    def __init__(self, vocab: _Vocab) -> None:
        self._vocab = vocab
        self._walkers: OrderedDict[str, GrammarWalker] = OrderedDict()
        self._tokens: dict[str, list[int]] = {}
        self._byte_tokens: dict[int, int] | None = None

    def walker(self, grammar: str) -> GrammarWalker | None:
        """The walker for a grammar (None when it cannot be walked: no closing then)."""
        walker = self._walkers.get(grammar)
        if walker is None or walker.full:
            try:
                walker = GrammarWalker(parse_gbnf(grammar))
            except (GrammarSyntaxError, RecursionError) as exc:
                logger.warning("grammar cannot be walked, no budget-aware closing: %s", exc)
                return None
            self._walkers[grammar] = walker
            while len(self._walkers) > _WALKERS_KEPT:
                self._walkers.popitem(last=False)
        self._walkers.move_to_end(grammar)
        return walker

    def budget(self, grammar: str) -> JsonBudget | None:
        """A new sequence's budget, or None when its grammar cannot be walked."""
        walker = self.walker(grammar)
        return JsonBudget(self, walker) if walker is not None else None

    def check_budget(self, grammar: str, max_tokens: int) -> None:
        """400 when max_tokens cannot hold even the shortest output the grammar allows."""
        budget = self.budget(grammar)
        minimum = budget.minimum() if budget is not None else 0
        if minimum > max_tokens:
            raise ValidationError(
                f"max_tokens {max_tokens} is too small for this JSON output: the shortest "
                f"value it allows takes {minimum} tokens",
                {"field": "max_tokens", "minimum": minimum, "max_tokens": max_tokens},
            )

    def tokens(self, text: str) -> list[int]:
        tokens = self._tokens.get(text)
        if tokens is None:
            if len(self._tokens) >= _TOKENIZED_KEPT:
                self._tokens.clear()
            tokens = self._tokens[text] = self._tokenize(text)
        return tokens

    def _tokenize(self, text: str) -> list[int]:
        # parse_special off: a schema's literal "<|im_end|>" is text, not a control token.
        tokens = self._vocab.tokenize(text, False, False)
        if self._spells(tokens, text):
            return tokens
        # Some tokenizers put a space before the text: then one character at a time.
        tokens = [t for ch in text for t in self._vocab.tokenize(ch, False, False)]
        if self._spells(tokens, text):
            return tokens
        raise ValueError(f"the tokenizer cannot spell {text!r} exactly")

    def _spells(self, tokens: list[int], text: str) -> bool:
        return b"".join(self._vocab.piece(t) for t in tokens) == text.encode()

    def byte_token(self, byte: int) -> int | None:
        """The token that stands for exactly one byte (to finish a character a token cut)."""
        if self._byte_tokens is None:  # built once per model, only when first needed
            found: dict[int, int] = {}
            for token in range(self._vocab.n_vocab):
                piece = self._vocab.piece(token)
                if len(piece) == 1 and piece[0] not in found:
                    found[piece[0]] = token
            self._byte_tokens = found
        return self._byte_tokens.get(byte)


class _Step:
    __slots__ = ("cost", "pending", "state")

    def __init__(self, state: WalkState, pending: bytes, cost: int) -> None:
        self.state, self.pending, self.cost = state, pending, cost


_UNCLOSABLE = 1 << 30  # a cost no budget meets


class JsonBudget:
    """One sequence's position in its grammar and the tokens needed to close from it."""

    def __init__(self, catalog: ClosingCatalog, walker: GrammarWalker) -> None:
        self._catalog = catalog
        self._walker = walker
        self._state = walker.initial
        self._pending = b""  # bytes of a character the last token cut
        self._lost = False

    def minimum(self) -> int:
        """Tokens of the shortest output the grammar allows (checked against max_tokens)."""
        return self._cost(self._walker.initial, b"")

    def look(self, piece: bytes) -> _Step | None:
        """Where one more token would leave the text; None when the walk lost the grammar."""
        try:
            text, pending = _split_utf8(self._pending + piece)
        except UnicodeDecodeError:
            return None
        state = self._walker.walk(self._state, text)
        if state is None:
            return None
        return _Step(state, pending, self._cost(state, pending))

    def take(self, step: _Step) -> None:
        self._state, self._pending = step.state, step.pending

    def allows(self, piece: bytes, room: int) -> bool:
        """Takes a token when the closing after it fits in `room` more tokens; False: close
        now instead. A walk that lost its place (it disagrees with llama.cpp) gives up
        closing and allows everything, so generation goes on as without it."""
        if self._lost:
            return True
        step = self.look(piece)
        if step is None:
            logger.warning("grammar walk lost its place; no budget-aware closing")
            self._lost = True
            return True
        if step.cost > room:
            return False
        self.take(step)
        return True

    def force_closing(self, sampler: _Sampler) -> tuple[list[int], bool]:
        """Records the closing tokens in the sampler (its grammar checks each); returns the
        tokens it took and whether that was all of them."""
        tokens = self.closing_tokens() or []
        for i, token in enumerate(tokens):
            if not sampler.force(token):
                logger.warning("llama.cpp's grammar refused a closing token; output cut")
                return tokens[:i], False
        return tokens, True

    def closing_tokens(self) -> list[int] | None:
        """The tokens that complete the output from where it stands (None: none found)."""
        return self._closing(self._state, self._pending)

    def _cost(self, state: WalkState, pending: bytes) -> int:
        if not pending and state.cost is not None:
            return state.cost
        tokens = self._closing(state, pending)
        cost = _UNCLOSABLE if tokens is None else len(tokens)
        if not pending:
            state.cost = cost
        return cost

    def _closing(self, state: WalkState, pending: bytes) -> list[int] | None:
        head: list[int] = []
        if pending:
            rest = _continuation(pending)
            try:
                ch = (pending + rest).decode("utf-8")
            except UnicodeDecodeError:
                return None
            after = self._walker.advance(state, ch)
            byte_tokens = [self._catalog.byte_token(b) for b in rest]
            if after is None or None in byte_tokens:
                return None
            head = [t for t in byte_tokens if t is not None]
            state = after
        text = self._walker.closing(state)
        if text is None:
            return None
        try:
            return head + self._catalog.tokens(text) if text else head
        except ValueError:
            return None
