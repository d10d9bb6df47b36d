"""GET /models, GET /models/{id}, POST /models/{id}/load."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from browser_llm.api.envelope import ok
from browser_llm.api.routes.common import ERROR_RESPONSES
from browser_llm.api.schemas import (
    Envelope,
    LoadModelResponse,
    ModelDetails,
    ModelsResponse,
    ModelSummary,
)
from browser_llm.service.registry import ModelRegistry, ModelView
from browser_llm.service.stats import RequestStats

__all__ = ["router"]

router = APIRouter(tags=["models"])


def _summary(view: ModelView) -> ModelSummary:
    e = view.entry
    return ModelSummary.model_validate(
        {
            "id": e.id,
            "name": e.name,
            "size": e.size,
            "vram_required": e.vram_required,
            "downloaded": view.downloaded,
            "speed_tier": e.speed_tier,
            "quality_tier": e.quality_tier,
            "capabilities": list(e.capabilities),
            "loaded": view.loaded,
        }
    )


def _details(view: ModelView, stats: RequestStats) -> ModelDetails:
    e = view.entry
    perf = stats.summary(e.id)
    return ModelDetails.model_validate(
        {
            **_summary(view).model_dump(),
            "description": e.description,
            "download_progress": 1.0 if view.downloaded else None,
            "parameters": {"total": e.parameters_total, "quantization": e.quantization},
            "performance": {
                "avg_tokens_per_second": perf.avg_tokens_per_second,
                "avg_latency_ms": perf.avg_latency_ms,
            },
            "size_bytes": e.size_bytes,
        }
    )


@router.get("/models", response_model=Envelope[ModelsResponse], summary="List models")
async def list_models(request: Request) -> Response:
    registry: ModelRegistry = request.app.state.registry
    return ok(request, ModelsResponse(models=[_summary(v) for v in registry.list()]))


@router.get(
    "/models/{model_id}",
    response_model=Envelope[ModelDetails],
    responses=ERROR_RESPONSES,
    summary="Model details",
)
async def get_model(model_id: str, request: Request) -> Response:
    registry: ModelRegistry = request.app.state.registry
    return ok(request, _details(registry.get(model_id), request.app.state.stats))


@router.post(
    "/models/{model_id}/load",
    response_model=Envelope[LoadModelResponse],
    responses=ERROR_RESPONSES,
    summary="Load a model for inference (replaces the loaded one)",
)
async def load_model(model_id: str, request: Request) -> Response:
    registry: ModelRegistry = request.app.state.registry
    loaded = await registry.load(model_id)
    return ok(
        request,
        LoadModelResponse(
            model_id=loaded.model_id, status="loaded", progress=1.0, estimated_time_ms=0.0
        ),
    )


@router.post(
    "/models/{model_id}/unload",
    response_model=Envelope[LoadModelResponse],
    responses=ERROR_RESPONSES,
    summary="Unload the model (extension); generation answers MODEL_NOT_LOADED until a load",
)
async def unload_model(model_id: str, request: Request) -> Response:
    registry: ModelRegistry = request.app.state.registry
    registry.get(model_id)  # 404 for an unknown id
    if registry.loaded_id == model_id:
        await registry.unload()
    return ok(request, LoadModelResponse(model_id=model_id, status="unloaded"))
