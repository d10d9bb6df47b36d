"""Which models exist, which is on disk, and loading one into the engine.

A load is a background job: fetch (download or assemble) -> GGUF header check
-> child-process probe (first load of a file that did not come from a pinned
package) -> engine load. POST /models/{id}/load starts it and answers at once;
the job's phase, progress and estimated time are read from here. A failed job
keeps its error, reported as status "error" by every load request for that model
(a client polling the load sees it), until a load asks to retry.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from browser_llm.core.errors import BrowserLLMError, ModelLoadFailedError, ValidationError
from browser_llm.core.types import LoadedModel
from browser_llm.engine.base import Engine
from browser_llm.engine.pool import EnginePool, ResidentModel, resident_models
from browser_llm.engine.process.probe import ProbeResult, probe_model
from browser_llm.engine.prompt_store import remove_model_entries
from browser_llm.models.catalog import Catalog, CatalogEntry
from browser_llm.models.download import DownloadProgress
from browser_llm.models.gguf_check import check_gguf
from browser_llm.models.library import ModelLibrary
from browser_llm.models.storage import ModelStore
from browser_llm.observability.profile import Profile

__all__ = ["LoadJob", "LoadStatus", "ModelRegistry", "ModelView"]

logger = logging.getLogger(__name__)

Phase = Literal["fetching", "checking", "probing", "loading", "done", "failed"]
# Until a load has been measured: bytes per second for check+load and for a download.
_DEFAULT_LOAD_BPS = 300e6
_DEFAULT_DOWNLOAD_BPS = 10e6
_FETCH_SHARE = 0.9  # of the progress bar, when the job downloads


@dataclass
class LoadJob:
    entry: CatalogEntry
    task: asyncio.Future[LoadedModel]  # the job's asyncio task
    phase: Phase = "fetching"
    phase_started: float = 0.0
    needs_fetch: bool = False
    needs_probe: bool = True
    error: BrowserLLMError | None = None


@dataclass(frozen=True)
class LoadStatus:
    model_id: str
    status: Literal["loaded", "loading", "error"]
    progress: float
    estimated_time_ms: float
    phase: str
    download: dict[str, Any] | None = None
    error: BrowserLLMError | None = None  # why the load failed (status "error")


@dataclass(frozen=True)
class ModelView:
    entry: CatalogEntry
    downloaded: bool
    loaded: bool
    download: DownloadProgress | None = None
    load: LoadStatus | None = None
    load_error: BrowserLLMError | None = None


Prober = Callable[[str], Awaitable[ProbeResult]]


class ModelRegistry:
    def __init__(
        self,
        engine: Engine,
        catalog: Catalog | ModelLibrary,
        store: ModelStore | None = None,
        profile: Profile | None = None,
        prober: Prober = probe_model,
        pool: EnginePool | None = None,
        prompt_cache: Path | None = None,
    ) -> None:
        self._prompt_cache = prompt_cache  # its folder: a deleted model's entries go too
        self._engine = engine
        self._pool = pool  # the same engine, when several models may stay loaded
        self._profile = profile
        if isinstance(catalog, ModelLibrary):
            self.library = catalog
        else:
            assert store is not None
            self.library = ModelLibrary(catalog, store)
        self.catalog = self.library.catalog
        self.store = self.library.store
        self._prober = prober
        self._engine_lock = asyncio.Lock()
        self._jobs: dict[str, LoadJob] = {}
        self._load_bps = _DEFAULT_LOAD_BPS
        self._last_finished: LoadJob | None = None  # the load that ended last
        self.on_loaded: Callable[[str], None] | None = None  # keep_alive starts its clock

    # ---- reading ---------------------------------------------------------
    @property
    def loaded_id(self) -> str | None:
        """The loaded model; with several loaded, the most recently used one."""
        model = self._engine.model
        return model.model_id if model is not None else None

    @property
    def pool(self) -> EnginePool | None:
        """The engine pool when several models may stay loaded (MAX_LOADED_MODELS > 1)."""
        return self._pool

    def residents(self) -> list[ResidentModel]:
        """The loaded models, most recently used first."""
        if self._pool is not None:
            return self._pool.residents()
        return resident_models(self._engine)

    def is_resident(self, model_id: str) -> bool:
        if self.pool is not None:
            return any(r.model.model_id == model_id for r in self.pool.residents())
        return self.loaded_id == model_id

    def serves(self, model_id: str) -> bool:
        """Whether a request for the model can go to the engine now, with no load first
        (a single engine that is swapping to another model will not serve it)."""
        if self.pool is not None:
            return self.is_resident(model_id)
        return self.loaded_id == model_id and self.swapping_to() is None

    def touch(self, model_id: str) -> None:
        """Marks a model the most recently used (what unnamed requests get)."""
        if self.pool is not None:
            self.pool.touch(model_id)

    def failed_load(self) -> LoadJob | None:
        """The most recent load, if it failed (and has not been retried since)."""
        job = self._last_finished
        return job if job is not None and job.error is not None else None

    def active_job(self) -> LoadJob | None:
        """The most recent load still in progress, if any."""
        running = [j for j in self._jobs.values() if not j.task.done()]
        return running[-1] if running else None

    def swapping_to(self) -> str | None:
        """The model the engine is loading right now (requests may queue behind it)."""
        job = self.active_job()
        return job.entry.id if job is not None and job.phase == "loading" else None

    def loading_hint(self) -> tuple[str, float] | None:
        """(model id, estimated seconds left) of the load in progress, if any."""
        job = self.active_job()
        return (job.entry.id, self._estimate_s(job)) if job is not None else None

    def _view(self, entry: CatalogEntry) -> ModelView:
        job = self._jobs.get(entry.id)
        running = job is not None and not job.task.done()
        return ModelView(
            entry=entry,
            downloaded=self.store.is_local(entry),
            loaded=self.is_resident(entry.id) and not running,
            download=self.library.progress(entry),
            load=self._status(job) if job is not None and running else None,
            load_error=job.error if job is not None and job.task.done() else None,
        )

    def list(self) -> list[ModelView]:
        return [self._view(e) for e in self.catalog.all()]

    def get(self, model_id: str) -> ModelView:
        return self._view(self.library.entry(model_id))

    def _estimate_s(self, job: LoadJob) -> float:
        size = job.entry.size_bytes
        rest = size / self._load_bps * (2 if job.needs_probe else 1)
        elapsed = time.monotonic() - job.phase_started
        if job.phase == "fetching":
            fetch = self.library.job(job.entry.id)
            p = fetch.progress if fetch is not None else None
            if p is not None and p.eta_s is not None:
                return p.eta_s + rest
            done = p.bytes_done if p is not None else 0
            return max(0, size - done) / _DEFAULT_DOWNLOAD_BPS + rest
        if job.phase == "loading":
            return max(0.0, size / self._load_bps - elapsed)
        return max(0.0, rest - elapsed)

    def _progress(self, job: LoadJob) -> float:
        if job.phase == "fetching":
            fetch = self.library.job(job.entry.id)
            fraction = (fetch.progress.fraction if fetch is not None else None) or 0.0
            return round(fraction * _FETCH_SHARE, 4)
        base = _FETCH_SHARE if job.needs_fetch else 0.0
        order = {"checking": 0.0, "probing": 0.3, "loading": 0.6}
        return round(base + (1 - base) * order.get(job.phase, 0.99), 4)

    def _status(self, job: LoadJob) -> LoadStatus:
        fetch = self.library.job(job.entry.id)
        return LoadStatus(
            model_id=job.entry.id,
            status="loading",
            progress=self._progress(job),
            estimated_time_ms=round(self._estimate_s(job) * 1000, 1),
            phase=job.phase,
            download=fetch.progress.as_dict() if fetch is not None else None,
        )

    # ---- loading -----------------------------------------------------------
    async def start_load(self, model_id: str, retry: bool = False) -> LoadStatus:
        """Starts loading (or reports the load in progress); answers at once.

        Problems found without any work (unknown id, no room for the download, a
        file on disk that fails the header check) raise here; later ones are kept
        on the job and reported as status "error" until a call with `retry`.
        """
        entry = self.library.entry(model_id)
        job = self._jobs.get(model_id)
        if job is not None and not job.task.done():
            return self._status(job)
        if job is not None:
            if job.error is not None and not retry:
                return LoadStatus(model_id, "error", 0.0, 0.0, "failed", error=job.error)
            del self._jobs[model_id]
        if self.is_resident(model_id):
            return LoadStatus(model_id, "loaded", 1.0, 0.0, "done")
        self.library.check_can_fetch(entry)
        path = self.store.path_for(entry)
        if path is not None:
            await asyncio.to_thread(check_gguf, path)
        # An engine with limits of its own (the browser tab's) refuses at once.
        self._engine.check_fits(
            model_id, path.stat().st_size if path is not None else entry.size_bytes
        )
        loop = asyncio.get_running_loop()
        job = LoadJob(
            entry=entry,
            task=loop.create_future(),  # replaced just below, once the job exists
            phase_started=time.monotonic(),
            needs_fetch=path is None,
            needs_probe=self._needs_probe(entry, path),
        )
        job.task = loop.create_task(self._run(job))
        job.task.add_done_callback(_retrieve)
        self._jobs[model_id] = job
        return self._status(job)

    async def load(self, model_id: str, retry: bool = True) -> LoadedModel:
        """Loads and waits (start-up, tests, requests naming a model). Raises the load's
        error; without `retry` an earlier failure is raised again instead of retried,
        and a new failure stays reported (status "error") for the next callers."""
        status = await self.start_load(model_id, retry=retry)
        if status.error is not None:
            raise status.error
        job = self._jobs.get(model_id)
        if status.status == "loaded" or job is None:
            resident = [r.model for r in self.residents() if r.model.model_id == model_id]
            current = resident[0] if resident else self._engine.model
            assert current is not None
            return current
        try:
            return await asyncio.shield(job.task)
        finally:
            if job.task.done() and (retry or job.error is None):
                self._jobs.pop(model_id, None)  # its error was reported by this raise

    def _needs_probe(self, entry: CatalogEntry, path: Path | None) -> bool:
        if entry.source.type == "package":
            return False  # pinned package files (and checksummed assemblies) are trusted
        return path is None or not self.library.is_verified(entry.id, path)

    def _enter(self, job: LoadJob, phase: Phase) -> None:
        job.phase = phase
        job.phase_started = time.monotonic()

    async def _run(self, job: LoadJob) -> LoadedModel:
        entry = job.entry
        try:
            path = await self.library.ensure_local(entry)
            self._enter(job, "checking")
            await asyncio.to_thread(check_gguf, path)
            if self._needs_probe(entry, path):
                self._enter(job, "probing")
                await self._prober(str(path))
                self.library.mark_verified(entry.id, path)
            return await self._engine_load(job, path)
        except BrowserLLMError as exc:
            job.error = exc
            raise
        except Exception as exc:
            logger.exception("loading model %s failed", entry.id)
            job.error = ModelLoadFailedError(
                f"loading model '{entry.id}' failed: {exc}", {"reason": "internal"}
            )
            raise job.error from exc
        finally:
            self._last_finished = job
            if job.error is not None:
                job.phase = "failed"
                logger.warning("model %s failed to load: %s", entry.id, job.error.message)

    async def _engine_load(self, job: LoadJob, path: Path) -> LoadedModel:
        async with self._engine_lock:
            self._enter(job, "loading")
            logger.info("loading model %s from %s", job.entry.id, path)
            info = await self._engine.load(job.entry.id, str(path))
        job.phase = "done"
        logger.info("model %s loaded in %.2f s", job.entry.id, info.load_time_s)
        if info.load_time_s > 0 and info.size_bytes > 0:
            measured = info.size_bytes / info.load_time_s
            self._load_bps = 0.5 * self._load_bps + 0.5 * measured
        if self._profile is not None:
            self._profile.record("model_load_ms", info.load_time_s * 1000, model=job.entry.id)
        if self.on_loaded is not None:
            self.on_loaded(job.entry.id)
        return info

    # ---- unloading and deleting ---------------------------------------------
    async def unload(self) -> None:
        async with self._engine_lock:
            await self._engine.unload()
        self._last_finished = None  # idle by request, whatever the last load did

    async def unload_model(self, model_id: str) -> bool:
        """Unloads one model (keep_alive ran out, or a client asked); False if not loaded.
        A single engine unloads only if that model is the one it holds."""
        if self.pool is None:
            if self.loaded_id != model_id or self.swapping_to() is not None:
                return False
            await self.unload()
            return True
        # No engine lock: the pool stops routing to the model at once, and its engine's
        # unload waits behind the model's own requests, not other models' loads.
        unloaded = await self.pool.unload_model(model_id)
        if unloaded and not self.pool.residents():
            self._last_finished = None
        return unloaded

    async def delete(self, model_id: str) -> int:
        """Unloads the model if loaded, stops its download, deletes its stored file."""
        entry = self.library.entry(model_id)
        self.library.check_removable(entry)
        job = self._jobs.get(model_id)
        if job is not None and not job.task.done():
            if job.phase != "fetching":
                raise ValidationError(
                    f"model '{model_id}' is being loaded; delete it once the load ends",
                    {"phase": job.phase},
                )
            job.task.cancel()
            with contextlib.suppress(BaseException):
                await job.task
        self._jobs.pop(model_id, None)
        if self.pool is not None:
            await self.unload_model(model_id)
        elif self.loaded_id == model_id:
            await self.unload()
        freed = await self.library.remove(entry)
        if self._prompt_cache is not None:
            await asyncio.to_thread(remove_model_entries, self._prompt_cache, model_id)
        return freed


def _retrieve(task: asyncio.Future[LoadedModel]) -> None:
    # The error is kept on the job; reading it here stops asyncio's "never retrieved".
    if not task.cancelled():
        task.exception()
