"""Anthropic's Messages API (/v1/messages, /v1/messages/count_tokens) on the same
engine, queue, limits, metrics and auth as every other dialect. `x-api-key` carries the
key (api/security.py); `anthropic-version` and `anthropic-beta` are accepted, any value."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse

from browser_llm.api.anthropic.calls import count_call, messages_call
from browser_llm.api.anthropic.protocol import CountTokensRequest, MessagesRequest
from browser_llm.api.anthropic.render import MessagesView, prompt_only
from browser_llm.api.envelope import arrived_at, request_id_of
from browser_llm.api.services import services
from browser_llm.api.streams import (
    GenerationSSEResponse,
    collect_unless_disconnected,
    json_or_sse,
)
from browser_llm.service.prompt_count import count_prompt_tokens

__all__ = ["router"]

router = APIRouter(prefix="/v1", tags=["anthropic"])

_STREAMS = json_or_sse(
    "The Message; with stream=true, Anthropic's Server-Sent Events (message_start ... message_stop)"
)


@router.post("/messages", summary="Anthropic Messages API", responses=_STREAMS)
async def messages(body: MessagesRequest, request: Request) -> Response:
    call = messages_call(body, request_id_of(request), arrived_at(request))
    svc = services(request)
    if body.max_tokens == 0:  # pre-warming a cache: nothing to generate, the prompt counted
        model_id, prepared = svc.answers.prepare(call)
        model_id, count = await count_prompt_tokens(
            svc.registry, svc.router, svc.tokens, prepared, model_id
        )
        out = prompt_only(model_id, count, body.stream)
        if isinstance(out, bytes):
            return Response(out, media_type="text/event-stream")
        return JSONResponse(out)
    answer = await svc.answers.start(call)
    view = MessagesView(answer)
    if body.stream:
        return GenerationSSEResponse(answer.stream, view.events())
    completion = await collect_unless_disconnected(request, answer.stream)
    return JSONResponse(view.body(answer.done(completion)))


@router.post("/messages/count_tokens", summary="Anthropic count_tokens: the prompt's tokens")
async def count_tokens(body: CountTokensRequest, request: Request) -> Response:
    svc = services(request)
    call = count_call(body, request_id_of(request), arrived_at(request))
    model_id, prepared = svc.answers.prepare(call)
    _, count = await count_prompt_tokens(svc.registry, svc.router, svc.tokens, prepared, model_id)
    return JSONResponse({"input_tokens": count})
