"""Ollama's generation routes on the same port: POST /api/generate, /api/chat, /api/embed.

Same engine, queue, limits (generate bucket), metrics and auth as every other route.
Answers stream as NDJSON unless `"stream": false` (Ollama streams by default). Errors
are Ollama's `{"error": "..."}`: with the HTTP status before a stream starts, as a last
line after.
"""

from __future__ import annotations

import time
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse

from browser_llm.api.envelope import arrived_at, request_id_of
from browser_llm.api.ollama.calls import chat_call, generate_call
from browser_llm.api.ollama.names import resolve
from browser_llm.api.ollama.options import check_embedding_options
from browser_llm.api.ollama.protocol import (
    OllamaChatRequest,
    OllamaEmbedRequest,
    OllamaGenerateRequest,
)
from browser_llm.api.ollama.render import OllamaView
from browser_llm.api.ollama.views import iso_time
from browser_llm.api.services import services
from browser_llm.api.streams import GenerationSSEResponse, collect_unless_disconnected
from browser_llm.core.errors import ValidationError
from browser_llm.service.calls import Call

__all__ = ["router"]

router = APIRouter(prefix="/api", tags=["ollama"])

NDJSON = "application/x-ndjson"


async def _load_or_unload(
    request: Request, name: str, model_id: str, keep_alive: float | None
) -> Response:
    """An empty prompt (or no messages) loads the model; with keep_alive 0 it unloads it,
    as Ollama does. One JSON object either way."""
    svc = services(request)
    if keep_alive == 0:
        await svc.keep_alive.unload_now(model_id)
        reason = "unload"
    else:
        await svc.router.ensure_loaded(model_id, request_id_of(request))
        svc.keep_alive.loaded(model_id, keep_alive)  # its clock starts now
        reason = "load"
    return JSONResponse(
        {
            "model": name,
            "created_at": iso_time(),
            "response": "",
            "done": True,
            "done_reason": reason,
        }
    )


async def _answer(request: Request, call: Call, name: str, chat: bool) -> Response:
    """The answer, streamed as NDJSON or whole; a call with nothing to answer loads (or,
    with keep_alive 0, unloads) the model, as Ollama does."""
    if not call.prompt and not call.turns:
        assert call.model is not None
        return await _load_or_unload(request, name, call.model, call.keep_alive_s)
    answer = await services(request).answers.start(call)
    view = OllamaView(answer, name, chat)
    if call.stream:
        return GenerationSSEResponse(answer.stream, view.lines(), media_type=NDJSON)
    completion = await collect_unless_disconnected(request, answer.stream)
    return JSONResponse(view.body(answer.done(completion)))


def _where(request: Request, name: str) -> tuple[str, str, float, int]:
    """(model id, request id, arrival, context size): what every call is built with."""
    svc = services(request)
    model_id = resolve(svc.router, svc.registry, name).entry.id  # Ollama's 400/404 wording
    return model_id, request_id_of(request), arrived_at(request), svc.settings.context_size


@router.post("/generate", summary="Ollama: complete a prompt (NDJSON stream by default)")
async def generate(body: OllamaGenerateRequest, request: Request) -> Response:
    call = generate_call(body, *_where(request, body.model))
    return await _answer(request, call, body.model, chat=False)


@router.post("/chat", summary="Ollama: the next chat message (NDJSON stream by default)")
async def chat(body: OllamaChatRequest, request: Request) -> Response:
    call = chat_call(body, *_where(request, body.model))
    return await _answer(request, call, body.model, chat=True)


async def _embed(body: OllamaEmbedRequest, request: Request, texts: list[str]) -> Any:
    check_embedding_options(body.options)
    svc = services(request)
    model = resolve(svc.router, svc.registry, body.model).entry.id
    started = time.perf_counter()
    result = await svc.embeddings.embed(texts, model, request_id_of(request))
    width = len(result.vectors[0]) if result.vectors else 0
    if body.dimensions is not None and body.dimensions != width:
        raise ValidationError(
            f"dimensions: this model's embeddings have {width}", {"field": "dimensions"}
        )
    return result, int((time.perf_counter() - started) * 1e9)


@router.post("/embed", summary="Ollama: embeddings (mean-pooled, L2-normalised)")
async def embed(body: OllamaEmbedRequest, request: Request) -> Response:
    if body.input is None:
        raise ValidationError("input: required", {"field": "input"})
    texts = [body.input] if isinstance(body.input, str) else body.input
    result, took_ns = await _embed(body, request, texts)
    return JSONResponse(
        {
            "model": body.model or result.model_id,
            "embeddings": result.vectors,
            "total_duration": took_ns,
            "load_duration": 0,
            "prompt_eval_count": result.prompt_tokens,
        }
    )


@router.post("/embeddings", summary="Ollama (older route): one embedding of `prompt`")
async def embeddings(body: OllamaEmbedRequest, request: Request) -> Response:
    if body.prompt is None:
        raise ValidationError("prompt: required", {"field": "prompt"})
    result, _ = await _embed(body, request, [body.prompt])
    return JSONResponse({"embedding": result.vectors[0]})
