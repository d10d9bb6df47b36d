"""POST /generate: one completion, as JSON or as Server-Sent Events."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from dataclasses import asdict, replace
from typing import Any

from fastapi import APIRouter, Request, Response

from browser_llm.api.envelope import ok, request_id_of
from browser_llm.api.error_shapes import stream_error_of
from browser_llm.api.services import services
from browser_llm.api.spec.common import ERROR_RESPONSES
from browser_llm.api.spec.schemas import Envelope, GenerateRequestBody, GenerateResponse
from browser_llm.api.streams import (
    SSE_EVENT_SCHEMA,
    GenerationSSEResponse,
    collect_unless_disconnected,
)
from browser_llm.core.durations import keep_alive_seconds
from browser_llm.core.errors import BrowserLLMError, ValidationError
from browser_llm.core.types import ChatMessage, Completion, GenerationParams
from browser_llm.engine.base import GenerationRequest
from browser_llm.grammar.check import check_json_output, json_constraint
from browser_llm.service.generation import GenerationStream
from browser_llm.service.stats import tokens_per_second

__all__ = ["router"]

router = APIRouter(tags=["generation"])

_DEFAULTS = GenerationParams()


def to_generation_request(
    body: GenerateRequestBody, request_id: str, started: float | None = None
) -> GenerationRequest:
    """The engine's request for a validated body (shared by REST and WebSocket)."""
    grammar = json_constraint(body.json_mode, body.json_schema)
    stop = [body.stop] if isinstance(body.stop, str) else (body.stop or [])

    def pick(value: Any, default: Any) -> Any:
        return default if value is None else value

    params = GenerationParams(
        max_tokens=pick(body.max_tokens, _DEFAULTS.max_tokens),
        temperature=float(pick(body.temperature, _DEFAULTS.temperature)),
        top_p=float(pick(body.top_p, _DEFAULTS.top_p)),
        top_k=pick(body.top_k, _DEFAULTS.top_k),
        frequency_penalty=float(pick(body.frequency_penalty, _DEFAULTS.frequency_penalty)),
        presence_penalty=float(pick(body.presence_penalty, _DEFAULTS.presence_penalty)),
        stop=tuple(stop),
        seed=body.seed,
        ignore_eos=body.ignore_eos,
        grammar=grammar,
    )
    messages = None
    if body.history:
        if body.raw:
            raise ValidationError("history cannot be used with raw", {"field": "history"})
        turns = [ChatMessage(m.role, m.content) for m in body.history]
        messages = (*turns, ChatMessage("user", body.prompt))
    return GenerationRequest(
        prompt=body.prompt,
        messages=messages,
        raw=body.raw,
        params=params,
        request_id=request_id,
        engine=body.engine,
        model=body.model,
        keep_alive_s=keep_alive_seconds(body.keep_alive),
        submitted_at=started or time.perf_counter(),
    )


def to_response(
    completion: Completion, model_id: str, body: GenerateRequestBody
) -> GenerateResponse:
    usage = completion.usage
    timings = completion.timings
    json_report = None
    if body.json_mode or body.json_schema is not None:
        json_report = {
            **asdict(check_json_output(completion.text, body.json_schema)),
            "closed_early": completion.closed_early,
        }
    return GenerateResponse.model_validate(
        {
            "json": json_report,
            "text": completion.text,
            "tokens": usage.completion_tokens,
            "finish_reason": completion.finish_reason,
            "usage": {
                "prompt_tokens": usage.prompt_tokens,
                "completion_tokens": usage.completion_tokens,
                "total_tokens": usage.total_tokens,
                "cached_prompt_tokens": usage.cached_prompt_tokens,
            },
            "performance": {
                "tokens_per_second": round(tokens_per_second(completion), 2),
                "latency_ms": round(timings.time_to_first_token_s * 1000, 2),
                "total_time_ms": round(timings.total_s * 1000, 2),
            },
            "model": model_id,
        }
    )


def _sse(payload: dict[str, Any]) -> bytes:
    return f"data: {json.dumps(payload, ensure_ascii=False)}\n\n".encode()


async def _sse_events(stream: GenerationStream, body: GenerateRequestBody) -> AsyncIterator[bytes]:
    try:
        async for text in stream:
            yield _sse({"type": "token", "data": {"token": text}})
    except BrowserLLMError as exc:
        yield _sse({"type": "error", "data": stream_error_of(exc)})
        return
    assert stream.completion is not None
    completion = to_response(stream.completion, stream.model_id, body).model_dump(
        mode="json", exclude_none=True, by_alias=True
    )
    yield _sse({"type": "done", "data": {"completion": completion}})


@router.post(
    "/generate",
    response_model=Envelope[GenerateResponse],
    responses={
        **ERROR_RESPONSES,
        200: {
            "description": "The completion; with stream=true, Server-Sent Events instead "
            "(token events, then one done or error event)",
            "content": {"text/event-stream": {"schema": SSE_EVENT_SCHEMA}},
        },
    },
    summary="Generate text from a prompt",
)
async def generate(body: GenerateRequestBody, request: Request) -> Response:
    service = services(request).generation
    gen = to_generation_request(
        body, request_id_of(request), getattr(request.state, "started_at", None)
    )
    gen = replace(gen, buffered=not body.stream)
    stream = await service.start(gen)  # errors before the stream are plain JSON errors
    if body.stream:
        return GenerationSSEResponse(stream, _sse_events(stream, body))
    completion = await collect_unless_disconnected(request, stream)
    return ok(request, to_response(completion, stream.model_id, body), exclude_none=True)
