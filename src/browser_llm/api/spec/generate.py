"""POST /generate: one completion, as JSON or as Server-Sent Events."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from browser_llm.api.envelope import arrived_at, ok, request_id_of
from browser_llm.api.services import services
from browser_llm.api.spec.calls import to_call, to_response
from browser_llm.api.spec.common import ERROR_RESPONSES
from browser_llm.api.spec.render import sse, stream_events
from browser_llm.api.spec.schemas import Envelope, GenerateRequestBody, GenerateResponse
from browser_llm.api.streams import (
    SSE_EVENT_SCHEMA,
    GenerationSSEResponse,
    collect_unless_disconnected,
)

__all__ = ["router"]

router = APIRouter(tags=["generation"])


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
    call = to_call(body, request_id_of(request), arrived_at(request))
    answer = await services(request).answers.start(call)  # errors here: plain JSON errors
    if body.stream:
        events = (sse(event) async for event in stream_events(answer, body))
        return GenerationSSEResponse(answer.stream, events)
    completion = await collect_unless_disconnected(request, answer.stream)
    done = answer.done(completion)
    return ok(request, to_response(done, answer.model_id, body), exclude_none=True)
