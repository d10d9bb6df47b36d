"""A request's `model` -> the model that answers it.

A name is a catalog id, an id with Ollama's `:latest` tag, or an alias
(BROWSER_LLM_ALIASES). An unknown name is 404. A known model that is not loaded
is loaded on demand when its file is on disk (the request waits, bounded); one
that would need a download is refused with the load command to run. No name:
the loaded model answers (with several loaded: the most recently used one).
"""

from __future__ import annotations

import asyncio
import logging
import math

from browser_llm.core.errors import ModelNotFoundError, ModelNotLoadedError
from browser_llm.service.registry import ModelRegistry

__all__ = ["ModelRouter"]

logger = logging.getLogger(__name__)


class ModelRouter:
    def __init__(
        self, registry: ModelRegistry, aliases: dict[str, str], load_wait_s: float
    ) -> None:
        self._registry = registry
        self._aliases = aliases
        self._load_wait_s = load_wait_s

    @property
    def aliases(self) -> dict[str, str]:
        return dict(self._aliases)

    def resolve(self, name: str | None) -> str | None:
        """The catalog id a client's model name means; None for no name (the loaded one)."""
        if name is None or not name.strip():
            return None
        wanted = name.strip()
        wanted = self._aliases.get(wanted, wanted)
        if wanted.endswith(":latest"):
            wanted = wanted[: -len(":latest")]
        if self._registry.catalog.get(wanted) is None:
            raise ModelNotFoundError(
                f"model '{name}' is not known; GET /v1/models lists the models that can answer",
                {"field": "model", "model": name},
            )
        return wanted

    async def ensure_loaded(self, model_id: str, request_id: str) -> None:
        """Loads `model_id` for a request unless it is loaded (or loading) already."""
        registry = self._registry
        if registry.serves(model_id):
            registry.touch(model_id)  # with several loaded: unnamed requests follow it
            return
        view = registry.get(model_id)
        if not view.downloaded:
            raise ModelNotLoadedError(
                f"model '{model_id}' is not on disk; download and load it first with "
                f"POST /api/v1/models/{model_id}/load",
                {"model": model_id},
            )
        logger.info(
            "request %s names model %s (loaded: %s): loading it on demand",
            request_id,
            model_id,
            registry.loaded_id,
        )
        load = asyncio.ensure_future(registry.load(model_id, retry=False))
        try:
            await asyncio.wait_for(asyncio.shield(load), self._load_wait_s)
        except TimeoutError as exc:
            raise ModelNotLoadedError(
                f"model '{model_id}' is still loading after {self._load_wait_s:.0f} s; "
                "retry when /status says ready",
                {"model": model_id, "loading": model_id},
                retry_after_s=max(1, math.ceil(self._load_wait_s / 4)),
            ) from exc
