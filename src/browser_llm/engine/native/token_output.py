"""What becomes of a sampled token: the end of generation (end of text, a stop string,
max_tokens), the JSON closing budget (grammar/closing.py), and its text and log-probability
entries out to the client. The engine thread calls it after each decode."""

from __future__ import annotations

import time
from collections.abc import Callable

from browser_llm.core.types import FinishReason
from browser_llm.engine.base import Event, GenerationHandle, TokenText
from browser_llm.engine.native.model import LlamaModel
from browser_llm.engine.native.sequence import Sequence

__all__ = ["TokenOutput"]


class TokenOutput:
    def __init__(
        self,
        emit: Callable[[GenerationHandle, Event], None],
        end: Callable[[Sequence, FinishReason], None],
    ) -> None:
        self._emit = emit
        self._end = end  # the engine's: frees the sequence's slot, sends Finished
        self.tokens_total = 0  # tokens given out since the engine started

    def on_token(self, model: LlamaModel, seq: Sequence, token: int, index: int) -> None:
        now = time.perf_counter()
        if seq.first_token_at is None:
            seq.first_token_at = now
        if model.is_eog(token) and not seq.handle.request.params.ignore_eos:
            self._end(seq, "stop")
            return
        piece = model.piece(token)
        if seq.budget is not None:
            if not seq.budget.allows(piece, seq.prompt.max_tokens - seq.n_generated - 1):
                self.close_early(model, seq, index)
                return
            seq.sampler.accept(token)
        seq.last_token_at = now
        self.take(seq, token, piece, index)
        if seq.text.stopped:
            self._end(seq, "stop")
        elif seq.n_generated >= seq.prompt.max_tokens:
            self._end(seq, "length")
        else:
            seq.pending_token = token

    def take(self, seq: Sequence, token: int, piece: bytes, index: int | None) -> None:
        """Gives out a token's text; `index`: its position's logits row (None: never decoded)."""
        seq.n_generated += 1
        seq.handle.tokens_generated += 1
        self.tokens_total += 1
        trail = seq.trail
        if trail is not None:
            trail.record(index, token, seq.text.length)
        text = seq.text.push(piece)
        if text:
            held = trail.release(seq.text.emitted) if trail is not None else ()
            self._emit(seq.handle, TokenText(text, held))

    def close_early(self, model: LlamaModel, seq: Sequence, index: int) -> None:
        """Emits the shortest completion of the output in place of the sampled token (the
        first closing token takes the sampled one's position and logits row)."""
        assert seq.budget is not None
        tokens, whole = seq.budget.force_closing(seq.sampler)
        pieces = [model.piece(token) for token in tokens]
        for i, (token, piece) in enumerate(zip(tokens, pieces, strict=True)):
            self.take(seq, token, piece, index if i == 0 else None)
        seq.closed_early = whole and bool(tokens)
        if seq.closed_early:  # the tool layer tells the model's calls from the closing's
            seq.closing = b"".join(pieces).decode("utf-8", "replace")
        self._end(seq, "stop" if seq.text.stopped else "length")
