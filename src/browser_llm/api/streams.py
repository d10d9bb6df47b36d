"""Responses that own a GenerationStream: whatever happens to the connection, the
stream is closed (its queue place and sequence released) when the response ends."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterable, Mapping, Sequence
from typing import Any

from fastapi import Request
from fastapi.responses import StreamingResponse
from starlette.types import Receive, Scope, Send

from browser_llm.core.errors import CancelledError
from browser_llm.core.types import Completion
from browser_llm.service.generation import GenerationStream

__all__ = [
    "SSE_EVENT_SCHEMA",
    "GenerationSSEResponse",
    "collect_all_unless_disconnected",
    "collect_unless_disconnected",
]


# One Server-Sent Event, as clients parse it: its `data` line holds one JSON object.
SSE_EVENT_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "data": {"type": "string", "contentMediaType": "application/json"},
        "event": {"type": "string"},
        "id": {"type": "string"},
        "retry": {"type": "integer"},
    },
    "required": ["data"],
}

_SSE_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}


class GenerationSSEResponse(StreamingResponse):
    """Server-Sent Events for one generation.

    Starlette cancels the body when the client disconnects; if that happens before the
    body generator first runs, the generator's own finally never runs. This close does.
    """

    def __init__(
        self,
        stream: GenerationStream | Sequence[GenerationStream],  # several: n choices
        content: AsyncIterable[bytes],
        headers: Mapping[str, str] | None = None,
        media_type: str = "text/event-stream",  # Ollama's routes: application/x-ndjson
    ) -> None:
        super().__init__(
            content, media_type=media_type, headers={**_SSE_HEADERS, **(headers or {})}
        )
        self.generations = (stream,) if isinstance(stream, GenerationStream) else tuple(stream)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            for generation in self.generations:
                generation.close()


async def _until_disconnect(request: Request) -> None:
    while (await request.receive())["type"] != "http.disconnect":
        pass


async def collect_unless_disconnected(request: Request, stream: GenerationStream) -> Completion:
    """Runs a whole generation, cancelling it if the client goes away first."""
    return (await collect_all_unless_disconnected(request, [stream]))[0]


async def collect_all_unless_disconnected(
    request: Request, streams: Sequence[GenerationStream]
) -> list[Completion]:
    """Runs generations whole (n choices), cancelling them if the client goes away first
    or one of them fails."""
    work = asyncio.ensure_future(asyncio.gather(*(s.collect() for s in streams)))
    watch = asyncio.ensure_future(_until_disconnect(request))
    both: set[asyncio.Future[Any]] = {work, watch}
    left = True
    try:
        await asyncio.wait(both, return_when=asyncio.FIRST_COMPLETED)
        left = not work.done()
    finally:
        watch.cancel()
        if not work.done():
            work.cancel()
        for stream in streams:
            stream.close()
    if left:
        raise CancelledError("client disconnected")
    return work.result()
