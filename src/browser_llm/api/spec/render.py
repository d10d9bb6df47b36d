"""An answer's events in the seed API's stream shape, the same on SSE and the WebSocket:
`token` events (`reasoning` events before them for a thinking model), then one `done`
(the whole GenerateResponse) or one `error`."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

from browser_llm.api.error_shapes import stream_error_of
from browser_llm.api.spec.calls import to_response
from browser_llm.api.spec.schemas import GenerateRequestBody
from browser_llm.service.answer import Answer, Done, Failure, ReasoningDelta

__all__ = ["sse", "stream_events"]


async def stream_events(answer: Answer, body: GenerateRequestBody) -> AsyncIterator[dict[str, Any]]:
    """{type, data} objects: what an SSE `data:` line and a WebSocket frame both carry."""
    async for event in answer.events():
        if isinstance(event, Failure):
            yield {"type": "error", "data": stream_error_of(event.error)}
        elif isinstance(event, Done):
            done = to_response(event, answer.model_id, body)
            completion = done.model_dump(mode="json", exclude_none=True, by_alias=True)
            yield {"type": "done", "data": {"completion": completion}}
        elif isinstance(event, ReasoningDelta):
            yield {"type": "reasoning", "data": {"reasoning": event.text}}
        elif event.text:
            yield {"type": "token", "data": {"token": event.text}}


def sse(payload: dict[str, Any]) -> bytes:
    return f"data: {json.dumps(payload, ensure_ascii=False)}\n\n".encode()
