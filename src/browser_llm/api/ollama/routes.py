"""Ollama's generation routes on the same port: POST /api/generate, /api/chat, /api/embed.

Same engine, queue, limits (generate bucket), metrics and auth as every other route.
Answers stream as NDJSON unless `"stream": false` (Ollama streams by default). Errors
are Ollama's `{"error": "..."}`: with the HTTP status before a stream starts, as a last
line after.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from dataclasses import replace
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse

from browser_llm.api.envelope import request_id_of
from browser_llm.api.error_shapes import ollama_error_of
from browser_llm.api.logprob_views import ollama_logprobs
from browser_llm.api.ollama.generation import (
    check_chat_fields,
    check_generate_fields,
    final_fields,
    logprobs_of,
    params_of,
    text_line,
)
from browser_llm.api.ollama.model_routes import ndjson
from browser_llm.api.ollama.names import resolve
from browser_llm.api.ollama.protocol import (
    OllamaChatRequest,
    OllamaEmbedRequest,
    OllamaGenerateRequest,
)
from browser_llm.api.ollama.tools import (
    tool_conversation,
    tool_grammar,
    tool_lines,
    tool_message,
    tool_plan,
)
from browser_llm.api.ollama.views import iso_time
from browser_llm.api.services import services
from browser_llm.api.streams import GenerationSSEResponse, collect_unless_disconnected
from browser_llm.core.durations import keep_alive_seconds
from browser_llm.core.errors import BrowserLLMError, ValidationError
from browser_llm.core.types import ChatMessage
from browser_llm.engine.base import GenerationRequest
from browser_llm.service.generation import GenerationStream
from browser_llm.service.tools.format import template_tools, tool_format_for

__all__ = ["router"]

router = APIRouter(prefix="/api", tags=["ollama"])


async def _load_or_unload(request: Request, name: str, keep_alive: float | None) -> Response:
    """An empty prompt (or no messages) loads the model; with keep_alive 0 it unloads it,
    as Ollama does. One JSON object either way."""
    svc = services(request)
    model_id = resolve(svc.router, svc.registry, name).entry.id
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


async def _start(request: Request, gen: GenerationRequest) -> tuple[GenerationStream, float]:
    """The admitted stream, and the time spent loading its model on demand (Ollama's
    load_duration: the service loads a named model that is on disk but not loaded)."""
    svc = services(request)
    view = resolve(svc.router, svc.registry, gen.model)
    loading = not view.loaded
    started = time.perf_counter()
    stream = await svc.generation.start(gen)
    return stream, (time.perf_counter() - started if loading else 0.0)


def _request(
    request: Request, model: str, keep_alive: float | None, **prompt: Any
) -> GenerationRequest:
    return GenerationRequest(
        model=model,  # the service resolves it and loads it on demand
        keep_alive_s=keep_alive,  # None: the server's default
        request_id=request_id_of(request),
        submitted_at=getattr(request.state, "started_at", None) or time.perf_counter(),
        **prompt,
    )


async def _lines(
    stream: GenerationStream, name: str, chat: bool, load_s: float
) -> AsyncIterator[bytes]:
    asked = stream.asked_logprobs
    try:
        async for piece in stream.pieces():
            line = text_line(name, piece.text, chat)
            if asked:  # each line carries its own tokens' entries, as Ollama's do
                line["logprobs"] = ollama_logprobs(piece.logprobs)
            yield ndjson(line)
    except BrowserLLMError as exc:
        yield ndjson(ollama_error_of(exc))
        return
    assert stream.completion is not None
    yield ndjson({**text_line(name, "", chat), **final_fields(stream.completion, load_s)})


async def _answer(
    request: Request, stream: GenerationStream, name: str, chat: bool, streamed: bool, load_s: float
) -> Response:
    if streamed:
        lines = _lines(stream, name, chat, load_s)
        return GenerationSSEResponse(stream, lines, media_type="application/x-ndjson")
    completion = await collect_unless_disconnected(request, stream)
    body = {**text_line(name, completion.text, chat), **final_fields(completion, load_s)}
    if stream.asked_logprobs:
        body["logprobs"] = ollama_logprobs(stream.logprobs)
    return JSONResponse(body)


@router.post("/generate", summary="Ollama: complete a prompt (NDJSON stream by default)")
async def generate(body: OllamaGenerateRequest, request: Request) -> Response:
    check_generate_fields(body)
    keep_alive = keep_alive_seconds(body.keep_alive)
    params = params_of(body, services(request).settings.context_size)
    resolve(services(request).router, services(request).registry, body.model)  # 400/404 first
    if not body.prompt:
        return await _load_or_unload(request, body.model, keep_alive)
    if body.system:
        messages = (ChatMessage("system", body.system), ChatMessage("user", body.prompt))
        gen = _request(request, body.model, keep_alive, messages=messages, params=params)
    else:
        gen = _request(
            request, body.model, keep_alive, prompt=body.prompt, raw=bool(body.raw), params=params
        )
    gen = replace(gen, logprobs=logprobs_of(body))
    stream, load_s = await _start(request, gen)
    return await _answer(request, stream, body.model, False, body.stream is not False, load_s)


@router.post("/chat", summary="Ollama: the next chat message (NDJSON stream by default)")
async def chat(body: OllamaChatRequest, request: Request) -> Response:
    check_chat_fields(body)
    svc = services(request)
    plan = tool_plan(body, tool_format_for(svc.registry, svc.router, body.model))
    messages = tool_conversation(body, plan)
    keep_alive = keep_alive_seconds(body.keep_alive)
    grammar = tool_grammar(plan) if plan is not None else None
    params = params_of(body, services(request).settings.context_size, grammar)
    resolve(services(request).router, services(request).registry, body.model)
    if not messages:
        return await _load_or_unload(request, body.model, keep_alive)
    tools = template_tools(plan) if plan is not None else None
    gen = _request(request, body.model, keep_alive, messages=messages, params=params, tools=tools)
    if plan is None:  # tool answers: no logprobs (docs/api.md)
        gen = replace(gen, logprobs=logprobs_of(body))
    stream, load_s = await _start(request, gen)
    if plan is None:
        return await _answer(request, stream, body.model, True, body.stream is not False, load_s)
    if body.stream is not False:
        lines = (ndjson(item) async for item in tool_lines(stream, plan, body.model, load_s))
        return GenerationSSEResponse(stream, lines, media_type="application/x-ndjson")
    completion = await collect_unless_disconnected(request, stream)
    line = {**text_line(body.model, "", True), **final_fields(completion, load_s)}
    return JSONResponse({**line, "message": tool_message(plan, completion)})


async def _embed(body: OllamaEmbedRequest, request: Request, texts: list[str]) -> Any:
    if body.options:
        raise ValidationError("options: not used for embeddings here", {"field": "options"})
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
