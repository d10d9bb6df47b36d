"""GET /status: state, system, performance and health, from real readings."""

from __future__ import annotations

from typing import Literal

import psutil
from fastapi import APIRouter, Request, Response
from pydantic import BaseModel

from browser_llm.api.envelope import ok
from browser_llm.api.routes.engine_page import browser_status
from browser_llm.api.schemas import Envelope, StatusResponse
from browser_llm.config import Settings
from browser_llm.engine.base import Engine
from browser_llm.service.generation import GenerationService
from browser_llm.service.registry import ModelRegistry
from browser_llm.service.stats import RequestStats

__all__ = ["router"]

router = APIRouter(tags=["status"])

_GB = 1024**3


def _gb(n: float) -> float:
    return round(n / _GB, 3)


class Health(BaseModel):
    status: Literal["ok"] = "ok"


@router.get(
    "/health",
    response_model=Envelope[Health],
    summary="Liveness check (open without an API key, not rate limited)",
)
async def health(request: Request) -> Response:
    return ok(request, Health())


@router.get("/status", response_model=Envelope[StatusResponse], summary="System status")
async def get_status(request: Request) -> Response:
    engine: Engine = request.app.state.engine
    registry: ModelRegistry = request.app.state.registry
    stats: RequestStats = request.app.state.stats
    generation: GenerationService = request.app.state.generation
    settings: Settings = request.app.state.settings
    avg_wait, max_wait = stats.queue_wait_ms()
    model = engine.model
    engine_stats = engine.stats()
    used = registry.library.used_bytes()
    perf = stats.summary()
    loading = registry.active_job()
    load = registry.get(loading.entry.id).load if loading is not None else None
    browser = browser_status(request.app.state)
    body = StatusResponse.model_validate(
        {
            "status": "loading" if load is not None else engine.state,
            "loading": {
                "model_id": load.model_id,
                "phase": load.phase,
                "progress": load.progress,
                "estimated_time_ms": load.estimated_time_ms,
            }
            if load is not None
            else None,
            "model": {"id": model.model_id, "loaded": True} if model is not None else None,
            "system": {
                "webgpu_available": engine.gpu_offload_supported,
                "ram_gb": _gb(psutil.virtual_memory().total),
                "gpu_vram_gb": 0.0,
                "storage_quota_gb": _gb(registry.store.quota_bytes(used)),
                "storage_used_gb": _gb(used),
            },
            "performance": {
                "avg_tokens_per_second": perf.avg_tokens_per_second,
                "avg_latency_ms": perf.avg_latency_ms,
                "requests_total": stats.requests_total,
                "requests_success": stats.requests_success,
                "requests_error": stats.requests_error,
            },
            "health": {
                "webgpu_context_losses": 0,
                "memory_errors": engine_stats.memory_errors,
                "stability_score": stats.stability_score,
            },
            "engine": {
                "queued": generation.waiting,
                "running": engine_stats.running,
                "parallel": settings.sequences,
                "max_queue": generation.max_queue,
                "avg_queue_wait_ms": avg_wait,
                "max_queue_wait_ms": max_wait,
                "requests_rejected": stats.requests_rejected,
                "tokens_generated_total": engine_stats.tokens_generated_total,
                "context_length": model.context_length if model is not None else None,
                "requests_cancelled": stats.requests_cancelled,
                "slot_moves": engine_stats.slot_moves,
                "draining": generation.draining,
                "restarts": engine_stats.restarts,
                "threads": engine_stats.threads,
                "threads_max": engine_stats.threads_max,
                "foreign_load": engine_stats.foreign_load,
                "degraded": engine_stats.threads < engine_stats.threads_max,
                "step_ms": engine_stats.step_ms,
                "process": engine_stats.process,
            },
            "browser": browser,
        }
    )
    if settings.engine == "browser" and browser is not None and browser["attached"]:
        # The browser engine is in use: system and health are the tab's own readings
        # (gpu_vram_gb is null there: WebGPU has no standard memory figure).
        for name in ("webgpu_available", "gpu_vram_gb", "storage_quota_gb", "storage_used_gb"):
            setattr(body.system, name, browser[name])
        body.health.webgpu_context_losses = browser["webgpu_context_losses"]
    return ok(request, body)
