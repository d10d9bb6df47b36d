"""How long each loaded model stays loaded once idle (Ollama's keep_alive).

Every request sets its model's keep_alive: its own (`keep_alive` on Ollama's routes and
the /v1 and /api/v1 generation extensions) or the server default (BROWSER_LLM_KEEP_ALIVE,
for ever unless set), as Ollama does. The clock starts when the model's last request
ends (or when it was loaded): a timer then unloads it through the registry, unless a
request came in meanwhile. Negative means for ever; 0 unloads it as soon as it is idle.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from dataclasses import dataclass

from browser_llm.core.types import LoadedModel
from browser_llm.service.registry import ModelRegistry

__all__ = ["KeepAlive", "LoadedModelView"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class LoadedModelView:
    """A loaded model as /status, /api/ps and /v1/models show it."""

    model: LoadedModel
    busy: bool  # requests for it are queued or running
    last_used: float  # time.time() of its last request or load
    keep_alive_s: float  # negative: for ever
    expires_at: float | None  # time.time() it unloads at if still idle; None: never
    pid: int | None  # its engine process


class KeepAlive:
    def __init__(self, registry: ModelRegistry, default_s: float) -> None:
        self._registry = registry
        self.default_s = default_s
        self._duration: dict[str, float] = {}  # model id -> its last request's keep_alive
        self._active: Counter[str] = Counter()  # model id -> requests in flight
        self._expires: dict[str, float] = {}  # model id -> time.time() it unloads at
        self._last_used: dict[str, float] = {}  # model id -> time.time() of its last event
        self._timers: dict[str, asyncio.TimerHandle] = {}
        self._unloads: set[asyncio.Task[None]] = set()  # kept until done (no lost tasks)
        # The model its clock unloaded last: a request naming no model loads it again
        # (as Ollama's next request would), instead of 503 for everyone after one
        # client's keep_alive 0. An explicit unload is not undone.
        self._expired: str | None = None
        registry.on_loaded = self.loaded

    # ---- reading ----------------------------------------------------------------
    def duration_s(self, model_id: str) -> float:
        return self._duration.get(model_id, self.default_s)

    def expires_at(self, model_id: str) -> float | None:
        """When the model unloads (time.time()); None: never. A busy model's clock has
        not started: it unloads no sooner than its keep_alive after now."""
        duration = self.duration_s(model_id)
        if duration < 0:
            return None
        if self._active[model_id] > 0:
            return time.time() + duration
        return self._expires.get(model_id, time.time() + duration)

    def to_reload(self) -> str | None:
        """The model a request naming none should load: the one the clock unloaded, when
        nothing is loaded (or loading) since."""
        if self._registry.loaded_id is not None or self._registry.swapping_to() is not None:
            return None
        return self._expired

    def busy(self, model_id: str) -> bool:
        return self._active[model_id] > 0

    def loaded_models(self) -> list[LoadedModelView]:
        """The loaded models, most recently used first, with their clocks."""
        return [
            LoadedModelView(
                model=r.model,
                busy=r.busy or self.busy(r.model.model_id),
                last_used=max(r.last_used, self._last_used.get(r.model.model_id, 0.0)),
                keep_alive_s=self.duration_s(r.model.model_id),
                expires_at=self.expires_at(r.model.model_id),
                pid=r.pid,
            )
            for r in self._registry.residents()
        ]

    # ---- events -------------------------------------------------------------------
    def loaded(self, model_id: str, keep_alive_s: float | None = None) -> None:
        """A model was loaded (or a request asked only to load it): its clock starts."""
        self._expired = None
        self._duration[model_id] = self.default_s if keep_alive_s is None else keep_alive_s
        self._last_used[model_id] = time.time()
        if not self.busy(model_id):
            self._arm(model_id)

    def begin(self, model_id: str, keep_alive_s: float | None, keep_duration: bool = False) -> None:
        """A request for the model was admitted. `keep_duration`: it leaves the model's
        keep_alive as the last request set it (embeddings), instead of the default."""
        if keep_alive_s is not None:
            self._duration[model_id] = keep_alive_s
        elif not keep_duration:
            self._duration[model_id] = self.default_s
        self._last_used[model_id] = time.time()
        self._active[model_id] += 1
        self._disarm(model_id)

    def end(self, model_id: str) -> None:
        """A request for the model ended (however it ended)."""
        self._active[model_id] -= 1
        self._last_used[model_id] = time.time()
        if self._active[model_id] <= 0:
            del self._active[model_id]
            self._arm(model_id)

    def close(self) -> None:
        for model_id in list(self._timers):
            self._disarm(model_id)

    # ---- the clock --------------------------------------------------------------
    def _disarm(self, model_id: str) -> None:
        timer = self._timers.pop(model_id, None)
        if timer is not None:
            timer.cancel()
        self._expires.pop(model_id, None)

    def _arm(self, model_id: str) -> None:
        self._disarm(model_id)
        duration = self.duration_s(model_id)
        if duration < 0:  # FOREVER_S
            return
        self._expires[model_id] = time.time() + duration
        loop = asyncio.get_running_loop()
        self._timers[model_id] = loop.call_later(duration, self._expire, model_id)

    def _expire(self, model_id: str) -> None:
        self._timers.pop(model_id, None)
        self._expires.pop(model_id, None)
        if self.busy(model_id) or not self._registry.is_resident(model_id):
            return
        task = asyncio.get_running_loop().create_task(self._unload(model_id))
        self._unloads.add(task)
        task.add_done_callback(self._unloads.discard)

    async def unload_now(self, model_id: str) -> bool:
        """keep_alive 0 with nothing to generate (Ollama's way to unload a model)."""
        unloaded = await self._registry.unload_model(model_id)
        if unloaded:
            self._expired = model_id
        return unloaded

    async def _unload(self, model_id: str) -> None:
        try:
            if await self.unload_now(model_id):
                logger.info(
                    "model %s unloaded: idle for its keep_alive (%.1f s)",
                    model_id,
                    self.duration_s(model_id),
                )
        except Exception:  # an unload that fails leaves the model loaded; log, go on
            logger.exception("unloading model %s after its keep_alive failed", model_id)
