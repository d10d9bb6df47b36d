"""OpenAI-compatible endpoints (/v1/chat/completions, /v1/completions, /v1/models) on the
same engine, queue, limits, metrics and auth as the Browser LLM API."""

from __future__ import annotations

import time
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse

from browser_llm.api.envelope import arrived_at, request_id_of
from browser_llm.api.openai.calls import chat_call, completion_call
from browser_llm.api.openai.protocol import ChatCompletionRequest, CompletionRequest
from browser_llm.api.openai.render import OpenAIView
from browser_llm.api.services import services
from browser_llm.api.streams import (
    SSE_EVENT_SCHEMA,
    GenerationSSEResponse,
    collect_all_unless_disconnected,
)
from browser_llm.core.errors import ModelNotFoundError
from browser_llm.service.calls import Call

__all__ = ["router"]

router = APIRouter(prefix="/v1", tags=["openai"])

_STREAMS: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "The completion; with stream=true, Server-Sent Events (chunks, then "
        "data: [DONE])",
        "content": {"application/json": {}, "text/event-stream": {"schema": SSE_EVENT_SCHEMA}},
    }
}


async def _answer(
    request: Request, call: Call, body: ChatCompletionRequest | CompletionRequest, offset: int = 0
) -> Response:
    """The SSE stream or the whole JSON answer, in the shape of OpenAI's two endpoints;
    `n` choices are n answers generated together."""
    answers = await services(request).answers.start_all(call)
    view = OpenAIView(answers, isinstance(body, ChatCompletionRequest), offset)
    streams = [a.stream for a in answers]
    if body.stream:
        include = bool(body.stream_options and body.stream_options.include_usage)
        return GenerationSSEResponse(streams, view.events(include))
    completions = await collect_all_unless_disconnected(request, streams)
    dones = [a.done(c) for a, c in zip(answers, completions, strict=True)]
    return JSONResponse(view.body(dones))


@router.post("/chat/completions", summary="OpenAI-compatible chat completion", responses=_STREAMS)
async def chat_completions(body: ChatCompletionRequest, request: Request) -> Response:
    call = chat_call(body, request_id_of(request), arrived_at(request))
    return await _answer(request, call, body)


@router.post("/completions", summary="OpenAI-compatible text completion", responses=_STREAMS)
async def completions(body: CompletionRequest, request: Request) -> Response:
    call = completion_call(body, request_id_of(request), arrived_at(request))
    # Legacy text_offset counts from the prompt's start, as OpenAI's (no echo here).
    return await _answer(request, call, body, offset=len(call.prompt or ""))


def _served_models(request: Request) -> list[dict[str, Any]]:
    """The models that can answer (on disk, and aliases of those), in OpenAI's shape."""
    svc = services(request)
    created = int(time.time())
    served = [v.entry.id for v in svc.registry.list() if v.downloaded]
    # Aliases answer too (BROWSER_LLM_ALIASES), when their model can.
    served += [alias for alias, target in svc.router.aliases.items() if target in served]
    aliases = svc.router.aliases
    loaded = {r.model.model_id for r in svc.registry.residents()}
    return [
        {
            "id": model_id,
            "object": "model",
            "created": created,
            "owned_by": "browser-llm",
            "loaded": aliases.get(model_id, model_id) in loaded,  # extension: in memory now
        }
        for model_id in served
    ]


@router.get("/models", summary="OpenAI-compatible model list (models that can answer)")
async def list_models(request: Request) -> Response:
    return JSONResponse({"object": "list", "data": _served_models(request)})


@router.get("/models/{model_id:path}", summary="OpenAI-compatible model (one of the list)")
async def retrieve_model(model_id: str, request: Request) -> Response:
    for model in _served_models(request):
        if model["id"] == model_id:
            return JSONResponse(model)
    raise ModelNotFoundError(
        f"model '{model_id}' is not known; GET /v1/models lists the models that can answer",
        {"field": "model", "model": model_id},
    )
