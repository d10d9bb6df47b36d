"""OpenAI-compatible endpoints (/v1/chat/completions, /v1/completions, /v1/models) on the
same engine, queue, limits, metrics and auth as the Browser LLM API."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import replace
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse

from browser_llm.api.envelope import request_id_of
from browser_llm.api.error_shapes import openai_error_of
from browser_llm.api.logprob_views import (
    chat_logprobs,
    completion_logprobs,
    legacy_option,
    logprobs_option,
)
from browser_llm.api.openai.fields import refuse_unsupported
from browser_llm.api.openai.protocol import ChatCompletionRequest, CompletionRequest
from browser_llm.api.openai.tools import (
    conversation,
    stream_tool_answer,
    tool_grammar,
    tool_message,
    tool_plan,
)
from browser_llm.api.services import services
from browser_llm.api.streams import (
    SSE_EVENT_SCHEMA,
    GenerationSSEResponse,
    collect_unless_disconnected,
)
from browser_llm.core.durations import keep_alive_seconds
from browser_llm.core.errors import BrowserLLMError, ValidationError
from browser_llm.core.types import Completion, GenerationParams, TokenLogprob
from browser_llm.engine.base import GenerationRequest
from browser_llm.grammar.check import json_constraint
from browser_llm.service.generation import GenerationStream
from browser_llm.service.tools.format import template_tools, tool_format_for
from browser_llm.service.tools.generic import ToolPlan

__all__ = ["router"]

router = APIRouter(prefix="/v1", tags=["openai"])

_DEFAULT_MAX_TOKENS = 4096  # OpenAI's default is "until done": clamped to the context


def _params(
    body: ChatCompletionRequest | CompletionRequest, grammar: str | None
) -> GenerationParams:
    refuse_unsupported(body)
    max_tokens = body.max_tokens
    if isinstance(body, ChatCompletionRequest) and body.max_completion_tokens is not None:
        max_tokens = body.max_completion_tokens
    stop = [body.stop] if isinstance(body.stop, str) else list(body.stop or [])
    return GenerationParams(
        max_tokens=max_tokens or _DEFAULT_MAX_TOKENS,
        temperature=1.0 if body.temperature is None else float(body.temperature),
        top_p=1.0 if body.top_p is None else float(body.top_p),
        top_k=40,
        frequency_penalty=float(body.frequency_penalty or 0.0),
        presence_penalty=float(body.presence_penalty or 0.0),
        stop=tuple(stop),
        seed=None if body.seed is None else body.seed & 0xFFFFFFFF,
        grammar=grammar,
    )


def _logprobs(body: ChatCompletionRequest | CompletionRequest) -> int | None:
    """Alternatives per token the engine reports (None: no logprobs, nothing computed)."""
    if isinstance(body, CompletionRequest):
        return legacy_option(body.logprobs)
    return logprobs_option(body.logprobs, body.top_logprobs)


def _logprobs_view(entries: list[TokenLogprob], chat: bool, base_offset: int) -> dict[str, Any]:
    return chat_logprobs(entries) if chat else completion_logprobs(entries, base_offset)


def _chat_grammar(body: ChatCompletionRequest) -> str | None:
    fmt = body.response_format
    if fmt is None or fmt.type == "text":
        return None
    if fmt.type == "json_object":
        return json_constraint(True, None)
    if fmt.json_schema is None:
        raise ValidationError(
            "response_format.json_schema is required", {"field": "response_format"}
        )
    return json_constraint(False, fmt.json_schema.schema_)


def _usage(completion: Completion) -> dict[str, Any]:
    u = completion.usage
    return {
        "prompt_tokens": u.prompt_tokens,
        "completion_tokens": u.completion_tokens,
        "total_tokens": u.total_tokens,
        "prompt_tokens_details": {"cached_tokens": u.cached_prompt_tokens},
    }


def _sse(payload: dict[str, Any] | str) -> bytes:
    text = payload if isinstance(payload, str) else json.dumps(payload, ensure_ascii=False)
    return f"data: {text}\n\n".encode()


async def _start(request: Request, gen: GenerationRequest) -> GenerationStream:
    service = services(request).generation
    return await service.start(gen)


def _request(
    request: Request,
    body: ChatCompletionRequest | CompletionRequest,
    params: GenerationParams,
    **prompt: Any,
) -> GenerationRequest:
    return GenerationRequest(
        params=params,
        engine=body.engine,
        model=body.model or None,
        keep_alive_s=keep_alive_seconds(body.keep_alive),
        request_id=request_id_of(request),
        submitted_at=getattr(request.state, "started_at", None) or time.perf_counter(),
        buffered=not body.stream,
        logprobs=_logprobs(body),
        **prompt,
    )


async def _stream(
    stream: GenerationStream,
    base: dict[str, Any],
    chat: bool,
    include_usage: bool,
    offset: int,
) -> AsyncIterator[bytes]:
    asked = stream.asked_logprobs

    def chunk(
        content: str | None,
        finish: str | None,
        first: bool = False,
        entries: tuple[TokenLogprob, ...] = (),
    ) -> dict[str, Any]:
        if chat:
            delta: dict[str, Any] = (
                {"role": "assistant", "content": ""}
                if first
                else ({"content": content} if content is not None else {})
            )
            choice: dict[str, Any] = {"index": 0, "delta": delta, "finish_reason": finish}
        else:
            choice = {"index": 0, "text": content or "", "finish_reason": finish}
        # Asked for: each text chunk carries its own tokens' entries.
        logprobs = asked and content is not None
        choice["logprobs"] = _logprobs_view(list(entries), chat, offset) if logprobs else None
        return {**base, "choices": [choice]}

    try:
        if chat:
            yield _sse(chunk(None, None, first=True))
        async for piece in stream.pieces():
            yield _sse(chunk(piece.text, None, entries=piece.logprobs))
    except BrowserLLMError as exc:
        yield _sse(openai_error_of(exc))
        yield _sse("[DONE]")
        return
    completion = stream.completion
    assert completion is not None
    yield _sse(chunk(None, completion.finish_reason))
    if include_usage:
        yield _sse({**base, "choices": [], "usage": _usage(completion)})
    yield _sse("[DONE]")


def _base(kind: str, model: str) -> dict[str, Any]:
    prefix = "chatcmpl" if kind == "chat.completion" else "cmpl"
    return {
        "id": f"{prefix}-{uuid.uuid4().hex[:24]}",
        "object": kind,
        "created": int(time.time()),
        "model": model,
        "system_fingerprint": None,
    }


async def _answer(
    request: Request,
    stream: GenerationStream,
    body: ChatCompletionRequest | CompletionRequest,
    chat: bool,
    offset: int = 0,
) -> Response:
    """The SSE stream or the whole JSON answer, in the shape of OpenAI's two endpoints."""
    kind = "chat.completion" if chat else "text_completion"
    base = _base(kind, stream.model_id)
    if body.stream:
        if chat:
            base["object"] = "chat.completion.chunk"
        include = bool(body.stream_options and body.stream_options.include_usage)
        return GenerationSSEResponse(stream, _stream(stream, base, chat, include, offset))
    completion = await collect_unless_disconnected(request, stream)
    choice: dict[str, Any] = {"index": 0, "finish_reason": completion.finish_reason}
    if chat:
        choice["message"] = {"role": "assistant", "content": completion.text}
    else:
        choice["text"] = completion.text
    asked = stream.asked_logprobs
    choice["logprobs"] = _logprobs_view(stream.logprobs, chat, offset) if asked else None
    return JSONResponse({**base, "choices": [choice], "usage": _usage(completion)})


_STREAMS: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "The completion; with stream=true, Server-Sent Events (chunks, then "
        "data: [DONE])",
        "content": {"application/json": {}, "text/event-stream": {"schema": SSE_EVENT_SCHEMA}},
    }
}


@router.post("/chat/completions", summary="OpenAI-compatible chat completion", responses=_STREAMS)
async def chat_completions(body: ChatCompletionRequest, request: Request) -> Response:
    svc = services(request)
    plan = tool_plan(body, tool_format_for(svc.registry, svc.router, body.model))
    if plan is not None and plan.active:
        params = _params(body, tool_grammar(plan))
    else:
        params = _params(body, _chat_grammar(body))
    messages = conversation(body, plan)
    tools = template_tools(plan) if plan is not None else None
    gen = _request(request, body, params, messages=messages, tools=tools)
    if plan is not None and plan.active:  # tool answers: no logprobs (docs/api.md)
        gen = replace(gen, logprobs=None)
    stream = await _start(request, gen)
    if plan is not None and plan.active:
        return await _answer_with_tools(request, stream, body, plan)
    return await _answer(request, stream, body, chat=True)


async def _answer_with_tools(
    request: Request, stream: GenerationStream, body: ChatCompletionRequest, plan: ToolPlan
) -> Response:
    base = _base("chat.completion", stream.model_id)
    rid = request_id_of(request)
    if body.stream:
        base["object"] = "chat.completion.chunk"
        include = bool(body.stream_options and body.stream_options.include_usage)

        def chunk(delta: dict[str, Any], finish: str | None) -> dict[str, Any]:
            choice = {"index": 0, "delta": delta, "finish_reason": finish, "logprobs": None}
            return {**base, "choices": [choice]}

        def tail(completion: Completion) -> list[dict[str, Any]]:
            return [{**base, "choices": [], "usage": _usage(completion)}] if include else []

        async def events() -> AsyncIterator[bytes]:
            async for item in stream_tool_answer(stream, plan, chunk, tail, rid):
                yield _sse(item)

        return GenerationSSEResponse(stream, events())
    completion = await collect_unless_disconnected(request, stream)
    message, finish = tool_message(plan, completion, rid)
    choice = {"index": 0, "message": message, "finish_reason": finish, "logprobs": None}
    return JSONResponse({**base, "choices": [choice], "usage": _usage(completion)})


@router.post("/completions", summary="OpenAI-compatible text completion", responses=_STREAMS)
async def completions(body: CompletionRequest, request: Request) -> Response:
    params = _params(body, None)
    if body.max_tokens is None:
        params = replace(params, max_tokens=16)  # OpenAI's default for completions
    prompt = body.prompt if isinstance(body.prompt, str) else body.prompt[0]
    if not prompt:
        raise ValidationError("prompt: must not be empty", {"field": "prompt"})
    stream = await _start(request, _request(request, body, params, prompt=prompt, raw=True))
    # Legacy text_offset counts from the prompt's start, as OpenAI's (no echo here).
    return await _answer(request, stream, body, chat=False, offset=len(prompt))


@router.get("/models", summary="OpenAI-compatible model list (models that can answer)")
async def list_models(request: Request) -> Response:
    svc = services(request)
    created = int(time.time())
    served = [v.entry.id for v in svc.registry.list() if v.downloaded]
    # Aliases answer too (BROWSER_LLM_ALIASES), when their model can.
    served += [alias for alias, target in svc.router.aliases.items() if target in served]
    aliases = svc.router.aliases
    loaded = {r.model.model_id for r in svc.registry.residents()}
    data = [
        {
            "id": model_id,
            "object": "model",
            "created": created,
            "owned_by": "browser-llm",
            "loaded": aliases.get(model_id, model_id) in loaded,  # extension: in memory now
        }
        for model_id in served
    ]
    return JSONResponse({"object": "list", "data": data})
