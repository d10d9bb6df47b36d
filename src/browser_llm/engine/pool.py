"""Several resident models: one engine (one engine process) per loaded model.

BROWSER_LLM_MAX_LOADED_MODELS > 1 serves the native engine through this pool. It is an
Engine itself, so everything above it (registry, generation, status, metrics) keeps
reading one engine; a request goes to the engine of the model it names (the service
puts the resolved catalog id in `GenerationRequest.model`), a request naming none to the
most recently used model. Loading a model when the pool is full reuses the engine of
the least recently used idle model (that engine swaps its model, as a single engine
does); when every resident model is busy, the least recently used one is swapped and
its load waits behind its running requests, so a running stream is never cut.
Unloading a model ends its engine process, except the last engine, which stays
started without a model (what a single engine does on unload).

Which models expire when is the service's business (service/keep_alive.py); the
pool only loads, routes, unloads, and checks memory before a load.
"""

from __future__ import annotations

import dataclasses
import itertools
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import psutil

from browser_llm.core.errors import StorageError
from browser_llm.core.types import Embeddings, EmbedInput, GpuDevice, LoadedModel
from browser_llm.engine.base import (
    Engine,
    EngineState,
    EngineStats,
    GenerationHandle,
    GenerationRequest,
    summed_counters,
)

__all__ = ["EnginePool", "ResidentModel", "resident_models"]

logger = logging.getLogger(__name__)

# A process engine's own memory besides the model file: Python, llama.cpp, the KV cache
# of a small context. A rough figure for the check against available RAM.
_ENGINE_OVERHEAD_BYTES = 200_000_000


@dataclass(frozen=True)
class ResidentModel:
    """A loaded model as /status and /api/ps show it."""

    model: LoadedModel
    busy: bool  # requests are queued or running on it
    last_used: float  # time.time() of its last request or load (0.0: not tracked)
    pid: int | None  # its engine process, when it has one


_use_order = itertools.count()  # ties of time.time() must not make LRU order arbitrary


@dataclass
class _Slot:
    engine: Engine
    model: LoadedModel
    last_used: float = field(default_factory=time.time)
    order: int = field(default_factory=lambda: next(_use_order))
    handles: list[GenerationHandle] = field(default_factory=list)

    def use(self) -> None:
        self.last_used = time.time()
        self.order = next(_use_order)

    def busy(self) -> bool:
        # A cancelled handle ends at its engine's next step: not worth waiting for.
        self.handles = [h for h in self.handles if not (h.finished or h.cancelled)]
        return bool(self.handles)


def _pid(engine: Engine) -> int | None:
    process = engine.stats().details.get("process")
    pid = process.get("pid") if process is not None else None
    return pid if isinstance(pid, int) else None


def resident_models(engine: Engine, busy: bool = False) -> list[ResidentModel]:
    """The one model a single engine holds (`busy` as the caller counts it); a pool says
    its own (EnginePool.residents)."""
    model = engine.model
    if model is None:
        return []
    return [ResidentModel(model, busy, 0.0, _pid(engine))]  # 0.0: the caller knows better


def _available_bytes() -> int:
    return int(psutil.virtual_memory().available)


class EnginePool:
    """Implements the Engine protocol over up to `max_models` engines, one model each."""

    def __init__(
        self,
        factory: Callable[[], Engine],
        max_models: int,
        memory_limit_bytes: int = 0,
        available_bytes: Callable[[], int] = _available_bytes,
    ) -> None:
        self._factory = factory
        self.max_models = max(1, max_models)
        self._memory_limit = memory_limit_bytes
        self._available = available_bytes
        self._engines: list[Engine] = [factory()]  # every live engine; never empty
        self._slots: dict[str, _Slot] = {}  # resident models
        self._loading: dict[str, Engine] = {}  # model id -> the engine loading it
        self._retired = EngineStats(0, 0, 0)  # counters of engines that were shut down
        self._started = False

    # ---- reading ----------------------------------------------------------------
    def residents(self) -> list[ResidentModel]:
        slots = sorted(self._slots.values(), key=lambda s: s.order, reverse=True)
        return [ResidentModel(s.model, s.busy(), s.last_used, _pid(s.engine)) for s in slots]

    def _recent(self) -> _Slot | None:
        return max(self._slots.values(), key=lambda s: s.order, default=None)

    def _home(self) -> Engine:
        """The engine that answers for the pool when no model is named."""
        slot = self._recent()
        if slot is not None:
            return slot.engine
        if self._loading:
            return next(reversed(self._loading.values()))
        return self._engines[0]

    @property
    def state(self) -> EngineState:
        if self._slots:
            return "ready"
        if self._loading:
            return "loading"
        return self._engines[0].state

    @property
    def model(self) -> LoadedModel | None:
        slot = self._recent()
        return slot.model if slot is not None else None

    @property
    def gpu_offload_supported(self) -> bool:
        return self._engines[0].gpu_offload_supported

    @property
    def gpu_devices(self) -> tuple[GpuDevice, ...]:
        return self._engines[0].gpu_devices

    def not_loaded_reason(self) -> str | None:
        return self._home().not_loaded_reason()

    def touch(self, model_id: str) -> None:
        """Makes a resident model the most recently used (the next unnamed request's)."""
        slot = self._slots.get(model_id)
        if slot is not None:
            slot.use()

    # ---- lifecycle ----------------------------------------------------------------
    def start(self) -> None:
        self._started = True
        for engine in self._engines:
            engine.start()

    def shutdown(self) -> None:
        for engine in self._engines:
            engine.shutdown()

    def _victim(self) -> _Slot | None:
        """The slot a new model would take over, or None while there is room."""
        if len(self._slots) + len(self._loading) < self.max_models:
            return None
        candidates = sorted(self._slots.values(), key=lambda s: s.order)
        idle = [s for s in candidates if not s.busy()]
        chosen = idle or candidates
        return chosen[0] if chosen else None

    def check_fits(self, model_id: str, size_bytes: int) -> None:
        if model_id in self._slots:
            return
        victim = self._victim()
        freed = victim.model.size_bytes if victim is not None else 0
        resident = sum(s.model.size_bytes for s in self._slots.values()) - freed
        if self._memory_limit:
            room, needed = self._memory_limit - resident, size_bytes
        else:
            room = self._available() + freed
            needed = size_bytes + (_ENGINE_OVERHEAD_BYTES if victim is None else 0)
        if needed > room:
            raise StorageError(
                f"not enough memory to load '{model_id}' next to the loaded models "
                f"({', '.join(sorted(self._slots)) or 'none'}): it needs about "
                f"{needed / 1e6:.0f} MB, {max(0, room) / 1e6:.0f} MB are free; "
                "unload a model first",
                {
                    "reason": "memory",
                    "model": model_id,
                    "needed_bytes": needed,
                    "available_bytes": max(0, room),
                    "loaded": sorted(self._slots),
                },
            )

    async def load(self, model_id: str, path: str) -> LoadedModel:
        slot = self._slots.get(model_id)
        if slot is not None:
            slot.use()
            return slot.model
        engine, previous = self._engine_for_load()
        self._loading[model_id] = engine
        try:
            info = await engine.load(model_id, path)
        except BaseException:
            self._after_failed_load(engine, previous)
            raise
        finally:
            self._loading.pop(model_id, None)
        self._slots[model_id] = _Slot(engine, info)
        return info

    def _engine_for_load(self) -> tuple[Engine, _Slot | None]:
        """An engine to load into: a spare one, a new one, or the LRU model's."""
        busy_engines = {s.engine for s in self._slots.values()} | set(self._loading.values())
        spare = [e for e in self._engines if e not in busy_engines]
        if spare:
            return spare[0], None
        victim = self._victim()
        if victim is None:
            engine = self._factory()
            if self._started:
                engine.start()
            self._engines.append(engine)
            return engine, None
        del self._slots[victim.model.model_id]  # no new request goes to it from now on
        logger.info(
            "%d models loaded (the most allowed): unloading %s, the least recently used%s",
            len(self._slots) + 1,
            victim.model.model_id,
            " (busy: the load waits for its requests)" if victim.busy() else "",
        )
        return victim.engine, victim

    def _after_failed_load(self, engine: Engine, previous: _Slot | None) -> None:
        back = engine.model
        if previous is not None and back is not None and back.model_id == previous.model.model_id:
            self._slots[back.model_id] = previous  # the engine restored the model it had
        elif back is None and len(self._engines) > 1:
            self._retire(engine)

    async def unload(self) -> None:
        for model_id in list(self._slots):
            await self.unload_model(model_id)

    async def unload_model(self, model_id: str) -> bool:
        """Unloads one model (after its running requests) and ends its engine process
        unless it is the last engine. False if it was not loaded."""
        slot = self._slots.pop(model_id, None)
        if slot is None:
            return False
        await slot.engine.unload()  # queued behind the requests it is running
        serving = {s.engine for s in self._slots.values()} | set(self._loading.values())
        if len(self._engines) > 1 and slot.engine not in serving:
            self._retire(slot.engine)
        logger.info("model %s unloaded (%d still loaded)", model_id, len(self._slots))
        return True

    def _retire(self, engine: Engine) -> None:
        if engine not in self._engines:
            return
        self._engines.remove(engine)
        stats = engine.stats()
        engine.shutdown()  # on the loop thread, as at server shutdown: it has no model
        retired = summed_counters(EngineStats(0, 0, 0), [self._retired, stats])
        self._retired = dataclasses.replace(retired, running=0)  # retired engines run nothing

    # ---- requests -----------------------------------------------------------------
    def submit(self, request: GenerationRequest) -> GenerationHandle:
        slot = self._slots.get(request.model) if request.model else self._recent()
        if slot is None:
            # Not resident (being loaded, or just swapped out): its loading engine, or the
            # most recent one, whose Admitted names the model that will really answer.
            engine = self._loading.get(request.model or "") or self._home()
            return engine.submit(request)
        slot.use()
        handle = slot.engine.submit(request)
        slot.busy()  # drops finished handles before adding this one
        slot.handles.append(handle)
        return handle

    async def tokenize(self, text: str, add_special: bool, parse_special: bool) -> list[int]:
        return await self._home().tokenize(text, add_special, parse_special)

    async def detokenize(
        self, tokens: list[int], remove_special: bool, unparse_special: bool
    ) -> str:
        return await self._home().detokenize(tokens, remove_special, unparse_special)

    async def embed(self, texts: Sequence[EmbedInput]) -> Embeddings:
        return await self._home().embed(texts)

    def stats(self) -> EngineStats:
        """The most recent engine's readings; counters summed over every engine."""
        home = self._home().stats()
        every = [e.stats() for e in self._engines] + [self._retired]
        return summed_counters(home, every)
