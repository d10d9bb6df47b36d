"""Ollama's model routes: /api/version, /api/tags, /api/show, /api/ps, /api/pull, /api/delete.

Models are this server's catalog (docs/models.md), named `id` or `id:latest`. A pull
fetches a catalog model's file (download or assembly) with Ollama's progress lines; it
cannot fetch from Ollama's own registry.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse, StreamingResponse

from browser_llm import __version__
from browser_llm.api.error_shapes import ollama_error_of
from browser_llm.api.ollama.names import resolve
from browser_llm.api.ollama.protocol import (
    OllamaDeleteRequest,
    OllamaModelRequest,
    OllamaPullRequest,
)
from browser_llm.api.ollama.render import ndjson
from browser_llm.api.ollama.views import FOREVER, file_info, iso_time, model_entry, show_body
from browser_llm.api.services import services
from browser_llm.core.errors import BrowserLLMError, ModelNotFoundError
from browser_llm.models.catalog import CatalogEntry
from browser_llm.models.gguf_check import check_gguf
from browser_llm.service.registry import ModelRegistry, ModelView

__all__ = ["OLLAMA_API_VERSION", "router"]

router = APIRouter(prefix="/api", tags=["ollama"])

# The Ollama release whose API these routes follow (clients gate features on it).
OLLAMA_API_VERSION = "0.12.0"
_NDJSON = "application/x-ndjson"
_PULL_POLL_S = 0.25


@router.get("/version", summary="Ollama: the API version served")
async def version() -> Response:
    return JSONResponse({"version": OLLAMA_API_VERSION, "browser_llm_version": __version__})


@router.get("/tags", summary="Ollama: models on disk")
async def tags(request: Request) -> Response:
    registry = services(request).registry
    models = []
    for view in registry.list():
        if view.downloaded:
            info = await file_info(registry.store.path_for(view.entry))
            models.append(model_entry(registry, view, info))
    return JSONResponse({"models": models})


def _on_disk(request: Request, name: str | None) -> ModelView:
    """The named model, which must be on disk (404 in Ollama's words otherwise)."""
    svc = services(request)
    view = resolve(svc.router, svc.registry, name)
    if not view.downloaded:
        raise _not_found(name or "")
    return view


@router.post("/show", summary="Ollama: a model's details, metadata and template")
async def show(body: OllamaModelRequest, request: Request) -> Response:
    registry = services(request).registry
    view = _on_disk(request, body.model or body.name)
    path = registry.store.path_for(view.entry)
    info = await file_info(path)
    return JSONResponse(show_body(view, info, path.stat().st_mtime if path else None))


@router.get("/ps", summary="Ollama: loaded models")
async def ps(request: Request) -> Response:
    svc = services(request)
    models = []
    for loaded in svc.keep_alive.loaded_models():  # most recently used first, as Ollama
        model_id = loaded.model.model_id
        if svc.registry.catalog.get(model_id) is None:
            continue
        view = svc.registry.get(model_id)
        entry = model_entry(
            svc.registry, view, await file_info(svc.registry.store.path_for(view.entry))
        )
        del entry["modified_at"]
        expires = iso_time(loaded.expires_at) if loaded.expires_at is not None else FOREVER
        # CPU only: no VRAM.
        entry.update(expires_at=expires, size_vram=0, context_length=loaded.model.context_length)
        models.append(entry)
    return JSONResponse({"models": models})


@router.delete("/delete", summary="Ollama: delete a model's file")
async def delete(body: OllamaDeleteRequest, request: Request) -> Response:
    view = _on_disk(request, body.model or body.name)
    await services(request).registry.delete(view.entry.id)
    return Response(status_code=200)


def _not_found(name: str) -> BrowserLLMError:
    return ModelNotFoundError(f"model '{name}' not found")


@router.post("/pull", summary="Ollama: fetch a catalog model, with progress lines")
async def pull(body: OllamaPullRequest, request: Request) -> Response:
    registry = services(request).registry
    entry = resolve(services(request).router, registry, body.model or body.name).entry
    registry.library.check_can_fetch(entry)  # refusals before any line: plain HTTP errors
    if body.stream is False:
        if registry.store.path_for(entry) is None:
            path = await registry.library.ensure_local(entry)
            await asyncio.to_thread(check_gguf, path)
        return JSONResponse({"status": "success"})
    events = _pull_events(registry, entry)
    return StreamingResponse((ndjson(item) async for item in events), media_type=_NDJSON)


async def _pull_events(
    registry: ModelRegistry, entry: CatalogEntry
) -> AsyncIterator[dict[str, Any]]:
    yield {"status": "pulling manifest"}
    try:
        if registry.store.path_for(entry) is None:
            async for item in _fetch_progress(registry, entry):
                yield item
    except BrowserLLMError as exc:
        yield ollama_error_of(exc)
        return
    yield {"status": "success"}


async def _fetch_progress(
    registry: ModelRegistry, entry: CatalogEntry
) -> AsyncIterator[dict[str, Any]]:
    """Progress of the model's shared fetch job (a client that leaves does not stop it)."""
    job = registry.library.fetch(entry)
    digest = f"sha256:{entry.sha256}" if entry.sha256 else None
    status = f"pulling {(entry.sha256 or entry.id)[:12]}"

    def line() -> dict[str, Any]:
        p = job.progress
        item: dict[str, Any] = {"status": status, "total": p.total_bytes or entry.size_bytes}
        if digest:
            item["digest"] = digest
        if p.bytes_done:
            item["completed"] = p.bytes_done
        return item

    while not job.task.done():
        yield line()
        await asyncio.wait({job.task}, timeout=_PULL_POLL_S)
    path = job.task.result()  # raises the fetch's error
    yield line()
    yield {"status": "verifying sha256 digest"}  # the fetch checked it against the catalog
    await asyncio.to_thread(check_gguf, path)
