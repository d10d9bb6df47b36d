"""Tokenize and detokenize with the loaded model's vocabulary (POST /tokenize, /detokenize)."""

from __future__ import annotations

from dataclasses import dataclass

from browser_llm.core.errors import ModelNotLoadedError, ValidationError
from browser_llm.core.text import has_lone_surrogate
from browser_llm.engine.base import Engine

__all__ = ["MAX_TEXT_CHARS", "MAX_TOKENS_IN", "TokenService", "Tokenized"]

# Bounds beyond the 1 MiB body limit: the same as a prompt's, in characters and tokens.
MAX_TEXT_CHARS = 400_000
MAX_TOKENS_IN = 400_000


@dataclass(frozen=True)
class Tokenized:
    model_id: str
    tokens: list[int]


class TokenService:
    def __init__(self, default: Engine, engines: dict[str, Engine]) -> None:
        self._default = default
        self._engines = engines

    def _engine(self, name: str | None) -> tuple[Engine, str]:
        engine = self._default if name is None else self._engines.get(name)
        if engine is None:
            raise ValidationError(f"engine {name!r} is not available", {"field": "engine"})
        model = engine.model
        if model is None:
            reason = engine.not_loaded_reason()
            raise ModelNotLoadedError(reason or "no model is loaded; load one first")
        return engine, model.model_id

    async def tokenize(
        self, text: str, add_special: bool, parse_special: bool, engine: str | None = None
    ) -> Tokenized:
        if len(text) > MAX_TEXT_CHARS:
            raise ValidationError(
                f"text is longer than {MAX_TEXT_CHARS} characters", {"field": "text"}
            )
        if has_lone_surrogate(text):
            raise ValidationError("text is not valid Unicode (lone surrogate)", {"field": "text"})
        target, model_id = self._engine(engine)
        return Tokenized(model_id, await target.tokenize(text, add_special, parse_special))

    async def detokenize(
        self,
        tokens: list[int],
        remove_special: bool,
        unparse_special: bool,
        engine: str | None = None,
    ) -> tuple[str, str]:
        """(model id, text)."""
        if len(tokens) > MAX_TOKENS_IN:
            raise ValidationError(f"more than {MAX_TOKENS_IN} tokens", {"field": "tokens"})
        target, model_id = self._engine(engine)
        n_vocab = target.model.n_vocab if target.model is not None else 0
        for i, token in enumerate(tokens):
            if not 0 <= token < n_vocab:
                raise ValidationError(
                    f"tokens[{i}]: {token} is not a token id of this model (0-{n_vocab - 1})",
                    {"field": f"tokens.{i}", "n_vocab": n_vocab},
                )
        return model_id, await target.detokenize(tokens, remove_special, unparse_special)
