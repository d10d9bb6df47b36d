"""GET /status's body: state, system, performance and health, each from a real reading.

docs/api.md names the source of every field. The route only wraps this in the envelope.
"""

from __future__ import annotations

from dataclasses import asdict
from datetime import UTC, datetime
from typing import Any

import psutil

from browser_llm.engine.base import Engine, EngineState
from browser_llm.engine.browser.engine import BrowserEngine
from browser_llm.service.generation import GenerationService
from browser_llm.service.keep_alive import KeepAlive
from browser_llm.service.registry import ModelRegistry
from browser_llm.service.stats import RequestStats

__all__ = ["StatusService", "browser_block"]

_GB = 1024**3


def _gb(n: float) -> float:
    return round(n / _GB, 3)


def _iso(epoch_s: float) -> str:
    return datetime.fromtimestamp(epoch_s, UTC).isoformat(timespec="milliseconds")


def browser_block(browser: BrowserEngine, model_file_requests: int) -> dict[str, Any]:
    """The `browser` block: the browser engine's tab and the tab's own readings."""
    tab = browser.tab
    readings = tab.readings if tab is not None else None
    model = browser.model if tab is not None else None
    return {
        "attached": tab is not None,
        "state": browser.state,
        "model": model.model_id if model is not None else None,
        "wanted_model": browser.wanted_model_id,
        "load_progress": browser.load_progress,
        "last_load": browser.last_load,
        "webgpu_available": readings.webgpu_available if readings else False,
        "webgpu_unavailable_reason": readings.webgpu_unavailable_reason if readings else None,
        "adapter": readings.adapter if readings else None,
        "backend": readings.backend if readings else None,
        "gpu_layers_offloaded": readings.gpu_layers_offloaded if readings else None,
        "gpu_vram_gb": readings.gpu_vram_gb if readings else None,
        "storage_quota_gb": readings.storage_quota_gb if readings else 0.0,
        "storage_used_gb": readings.storage_used_gb if readings else 0.0,
        "storage_persisted": readings.storage_persisted if readings else None,
        "webgpu_context_losses": readings.webgpu_context_losses if readings else 0,
        "memory_errors": browser.stats().memory_errors,
        "threads": readings.threads if readings else 0,
        "multi_thread": readings.multi_thread if readings else False,
        "tabs_attached_total": browser.tabs_attached_total,
        "model_file_requests": model_file_requests,
    }


class StatusService:
    """Reads every part of the server the status reports on."""

    def __init__(
        self,
        engine: Engine,
        registry: ModelRegistry,
        stats: RequestStats,
        generation: GenerationService,
        browser: BrowserEngine,
        browser_in_use: bool,
        file_requests: dict[str, int],
        keep_alive: KeepAlive | None = None,
        max_loaded_models: int = 1,
    ) -> None:
        self._engine = engine
        self._keep_alive = keep_alive
        self._max_loaded = max_loaded_models
        self._registry = registry
        self._stats = stats
        self._generation = generation
        self._browser = browser
        self._browser_in_use = browser_in_use
        self._file_requests = file_requests

    def _state(self) -> tuple[EngineState, dict[str, Any] | None, dict[str, Any] | None]:
        """(status, the load in progress, the failed load) — a failed load with no model
        serving reads "error" until it is retried, so a client polling status stops."""
        job = self._registry.active_job()
        if job is not None:
            load = self._registry.get(job.entry.id).load
            if load is not None:
                loading = {
                    "model_id": load.model_id,
                    "phase": load.phase,
                    "progress": load.progress,
                    "estimated_time_ms": load.estimated_time_ms,
                }
                return "loading", loading, None
        failed = self._registry.failed_load()
        error = None
        if failed is not None and failed.error is not None:
            error = {
                "model_id": failed.entry.id,
                "code": failed.error.code,
                "message": failed.error.message,
                "details": failed.error.details,
            }
        state = self._engine.state
        if state == "idle" and error is not None:
            state = "error"
        return state, None, error

    def _system(self) -> dict[str, Any]:
        used = self._registry.library.used_bytes()
        devices = self._engine.gpu_devices
        return {
            # The native engine runs on llama.cpp, never on WebGPU (see gpu_offload).
            "webgpu_available": False,
            "ram_gb": _gb(psutil.virtual_memory().total),
            # Dedicated memory of the GPUs llama.cpp can offload to; 0 with none.
            "gpu_vram_gb": _gb(sum(d.memory_total_bytes for d in devices if d.kind == "gpu")),
            "storage_quota_gb": _gb(self._registry.store.quota_bytes(used)),
            "storage_used_gb": _gb(used),
            "gpu_offload": {
                "supported": self._engine.gpu_offload_supported,
                "devices": [
                    {
                        **asdict(d),
                        "memory_total_gb": _gb(d.memory_total_bytes),
                        "memory_free_gb": _gb(d.memory_free_bytes),
                    }
                    for d in devices
                ],
            },
        }

    def _engine_block(self) -> dict[str, Any]:
        stats = self._engine.stats()
        model = self._engine.model
        avg_wait, max_wait = self._stats.queue_wait_ms()
        generation = self._generation
        return {
            "queued": generation.waiting,
            "running": stats.running,
            "parallel": generation.parallel,
            "max_queue": generation.max_queue,
            "avg_queue_wait_ms": avg_wait,
            "max_queue_wait_ms": max_wait,
            "requests_rejected": self._stats.requests_rejected,
            "tokens_generated_total": stats.tokens_generated_total,
            "context_length": model.context_length if model is not None else None,
            "requests_cancelled": self._stats.requests_cancelled,
            "slot_moves": stats.slot_moves,
            "draining": generation.draining,
            "restarts": stats.restarts,
            "threads": stats.threads,
            "threads_max": stats.threads_max,
            "foreign_load": stats.foreign_load,
            "degraded": stats.threads < stats.threads_max,
            "step_ms": stats.step_ms,
            "prompt_cache": {
                "bytes": stats.prompt_cache_bytes,
                "entries": stats.prompt_cache_entries,
                "lookups": stats.prompt_cache_lookups,
                "hits": stats.prompt_cache_hits,
                "hit_rate": (
                    stats.prompt_cache_hits / stats.prompt_cache_lookups
                    if stats.prompt_cache_lookups
                    else 0.0
                ),
            },
            "speculation": {
                "draft_tokens": stats.draft_tokens,
                "accepted": stats.draft_tokens_accepted,
                "acceptance_rate": (
                    stats.draft_tokens_accepted / stats.draft_tokens if stats.draft_tokens else 0.0
                ),
            },
            "process": stats.details.get("process"),
            "cluster": stats.details.get("cluster"),
        }

    def _models_loaded(self) -> list[dict[str, Any]]:
        """Every resident model (the `model` field is the most recently used one)."""
        if self._keep_alive is None:
            return []
        return [
            {
                "id": v.model.model_id,
                "busy": v.busy,
                "last_used": _iso(v.last_used) if v.last_used else None,
                "keep_alive_s": v.keep_alive_s,
                "expires_at": _iso(v.expires_at) if v.expires_at is not None else None,
                "size_bytes": v.model.size_bytes,
                "context_length": v.model.context_length,
                "pid": v.pid,
            }
            for v in self._keep_alive.loaded_models()
        ]

    def snapshot(self) -> dict[str, Any]:
        state, loading, load_error = self._state()
        model = self._engine.model
        perf = self._stats.summary()
        stats = self._stats
        browser = browser_block(self._browser, sum(self._file_requests.values()))
        body: dict[str, Any] = {
            "status": state,
            "loading": loading,
            "load_error": load_error,
            "model": {"id": model.model_id, "loaded": True} if model is not None else None,
            "system": self._system(),
            "performance": {
                "avg_tokens_per_second": perf.avg_tokens_per_second,
                "avg_latency_ms": perf.avg_latency_ms,
                "requests_total": stats.requests_total,
                "requests_success": stats.requests_success,
                "requests_error": stats.requests_error,
            },
            "health": {
                # Losses of the browser engine's WebGPU device; the native engine has none.
                "webgpu_context_losses": 0,
                "memory_errors": self._engine.stats().memory_errors,
                "stability_score": stats.stability_score,
            },
            "engine": self._engine_block(),
            "browser": browser,
            "models_loaded": self._models_loaded(),
            "max_loaded_models": self._max_loaded,
        }
        if self._browser_in_use and browser["attached"]:
            # The browser engine is in use: system and health are the tab's own readings
            # (gpu_vram_gb is null there: WebGPU has no standard memory figure).
            for name in ("webgpu_available", "gpu_vram_gb", "storage_quota_gb", "storage_used_gb"):
                body["system"][name] = browser[name]
            body["health"]["webgpu_context_losses"] = browser["webgpu_context_losses"]
        return body
