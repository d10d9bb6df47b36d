"""GET /models, GET /models/{id}, POST /models/{id}/load, /unload, DELETE /models/{id}."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response

from browser_llm.api.envelope import ok
from browser_llm.api.services import services
from browser_llm.api.spec.common import ERROR_RESPONSES
from browser_llm.api.spec.schemas import (
    DeleteModelResponse,
    Envelope,
    LoadModelResponse,
    ModelDetails,
    ModelsResponse,
    ModelSummary,
)
from browser_llm.core.errors import BrowserLLMError
from browser_llm.models.ids import validate_model_id
from browser_llm.service.registry import LoadStatus, ModelRegistry, ModelView
from browser_llm.service.stats import RequestStats

__all__ = ["router"]

router = APIRouter(tags=["models"])

_RESPONSES: dict[int | str, dict[str, Any]] = {
    **ERROR_RESPONSES,
    507: {"model": Envelope[None], "description": "STORAGE_ERROR (quota, disk, download)"},
}


def _registry(request: Request, model_id: str | None = None) -> ModelRegistry:
    if model_id is not None:
        validate_model_id(model_id)  # 400 before anything looks the id up
    registry = services(request).registry
    return registry


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


def _error_body(error: BrowserLLMError | None) -> dict[str, Any] | None:
    if error is None:
        return None
    return {"code": error.code, "message": error.message, "details": error.details}


def _load_body(status: LoadStatus) -> dict[str, Any]:
    return {
        "model_id": status.model_id,
        "status": status.status,
        "progress": status.progress,
        "estimated_time_ms": status.estimated_time_ms,
        "phase": status.phase,
        "download": status.download,
        "error": _error_body(status.error),
    }


def _details(view: ModelView, stats: RequestStats) -> ModelDetails:
    e = view.entry
    perf = stats.summary(e.id)
    download = view.download.as_dict() if view.download is not None else None
    progress = 1.0 if view.downloaded else (download or {}).get("progress")
    error = view.load_error
    return ModelDetails.model_validate(
        {
            **_summary(view).model_dump(),
            "description": e.description,
            "download_progress": progress,
            "parameters": {"total": e.parameters_total, "quantization": e.quantization},
            "performance": {
                "avg_tokens_per_second": perf.avg_tokens_per_second,
                "avg_latency_ms": perf.avg_latency_ms,
            },
            "size_bytes": e.size_bytes,
            "source": e.source.type,
            "sha256": e.sha256,
            "download": download,
            "load": _load_body(view.load) if view.load is not None else None,
            "load_error": _error_body(error) if error is not None else None,
        }
    )


@router.get("/models", response_model=Envelope[ModelsResponse], summary="List models")
async def list_models(request: Request) -> Response:
    registry = _registry(request)
    return ok(request, ModelsResponse(models=[_summary(v) for v in registry.list()]))


@router.get(
    "/models/{model_id}",
    response_model=Envelope[ModelDetails],
    responses=_RESPONSES,
    summary="Model details, with download and load progress",
)
async def get_model(model_id: str, request: Request) -> Response:
    registry = _registry(request, model_id)
    return ok(request, _details(registry.get(model_id), services(request).stats), exclude_none=True)


@router.post(
    "/models/{model_id}/load",
    response_model=Envelope[LoadModelResponse],
    responses=_RESPONSES,
    summary="Start loading a model (downloading it first if needed); answers at once",
)
async def load_model(
    model_id: str,
    request: Request,
    retry: Annotated[
        bool,
        Query(
            description="Extension: after a failed load, start again (without it the "
            "failure is reported as status 'error', so a client polling this call stops)"
        ),
    ] = False,
) -> Response:
    registry = _registry(request, model_id)
    status = await registry.start_load(model_id, retry=retry)
    return ok(request, LoadModelResponse.model_validate(_load_body(status)), exclude_none=True)


@router.post(
    "/models/{model_id}/unload",
    response_model=Envelope[LoadModelResponse],
    responses=_RESPONSES,
    summary="Unload the model (extension); generation answers MODEL_NOT_LOADED until a load",
)
async def unload_model(model_id: str, request: Request) -> Response:
    registry = _registry(request, model_id)
    registry.get(model_id)  # 404 for an unknown id
    if registry.loaded_id == model_id:
        await registry.unload()
    return ok(request, LoadModelResponse(model_id=model_id, status="unloaded"), exclude_none=True)


@router.delete(
    "/models/{model_id}",
    response_model=Envelope[DeleteModelResponse],
    responses=_RESPONSES,
    summary="Delete a model's stored file (extension); unloads it first if loaded",
)
async def delete_model(model_id: str, request: Request) -> Response:
    registry = _registry(request, model_id)
    freed = await registry.delete(model_id)
    return ok(request, DeleteModelResponse(model_id=model_id, deleted=True, freed_bytes=freed))
