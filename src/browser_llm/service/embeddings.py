"""Embeddings for a request: the named model (routed and loaded as for generation),
inputs bounded, the engine's vectors and token counts, counted in the stats."""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence

from browser_llm.core.errors import BrowserLLMError, ModelNotLoadedError, ValidationError
from browser_llm.core.types import Embeddings, EmbedInput
from browser_llm.engine.base import Engine
from browser_llm.service.keep_alive import KeepAlive
from browser_llm.service.model_router import ModelRouter
from browser_llm.service.stats import RequestStats

__all__ = ["MAX_INPUTS", "EmbeddingService"]

logger = logging.getLogger(__name__)

MAX_INPUTS = 256  # texts per request (the body size limit bounds their length)


class EmbeddingService:
    def __init__(
        self,
        engine: Engine,
        router: ModelRouter,
        stats: RequestStats,
        keep_alive: KeepAlive | None = None,
    ) -> None:
        self._engine = engine
        self._router = router
        self._stats = stats
        self._keep_alive = keep_alive  # an embedding keeps its model busy, as a generation

    async def embed(
        self, texts: Sequence[EmbedInput], model: str | None, request_id: str
    ) -> Embeddings:
        """`texts`: strings, or token id lists of the model's own vocabulary."""
        if not texts:
            raise ValidationError("input: give at least one text", {"field": "input"})
        if len(texts) > MAX_INPUTS:
            raise ValidationError(
                f"input: at most {MAX_INPUTS} texts per request", {"field": "input"}
            )
        if any(not t for t in texts):
            raise ValidationError("input: an empty text has no embedding", {"field": "input"})
        started = time.perf_counter()
        try:
            wanted = self._router.resolve(model)
            if wanted is not None:
                await self._router.ensure_loaded(wanted, request_id)
            loaded = self._engine.model
            if loaded is None:
                raise ModelNotLoadedError(
                    "no model is loaded; load one with POST /api/v1/models/{id}/load"
                )
            _check_token_ids(texts, loaded.n_vocab)
            held = wanted or loaded.model_id
            if self._keep_alive is not None:
                self._keep_alive.begin(held, None, keep_duration=True)
            try:
                result = await self._engine.embed(texts)
            finally:
                if self._keep_alive is not None:
                    self._keep_alive.end(held)
        except BrowserLLMError as error:
            self._stats.profile.record("errors", 1, code=error.code)
            raise
        took_ms = (time.perf_counter() - started) * 1000
        self._stats.profile.record("embedding_ms", took_ms, model=result.model_id)
        logger.info(
            "embeddings: %d texts, %d tokens, %.1f ms", len(texts), result.prompt_tokens, took_ms
        )
        return result


def _check_token_ids(texts: Sequence[EmbedInput], n_vocab: int) -> None:
    """Token ids must be the model's own: 400 naming the first one that is not."""
    single = len(texts) == 1
    for i, item in enumerate(texts):
        if isinstance(item, str):
            continue
        for j, token in enumerate(item):
            if not 0 <= token < n_vocab:
                where = f"input[{j}]" if single else f"input[{i}][{j}]"
                raise ValidationError(
                    f"{where}: {token} is not a token id of this model (0-{n_vocab - 1})",
                    {"field": "input", "position": [i, j], "token": token, "n_vocab": n_vocab},
                )
