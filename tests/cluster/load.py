"""Streaming generations kept open in the background (one asyncio loop in a thread), so a
test can saturate the cluster, act on it, and then end every stream it opened."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import httpx


@dataclass
class Stream:
    body: dict[str, Any]
    status: int | None = None  # HTTP status, once the response head arrived
    first_token_at: float | None = None  # time.monotonic() of the first token event
    ended_at: float | None = None  # of the terminal event (done / error) or a non-200 body
    end: dict[str, Any] | None = None  # the terminal event, or the error body
    tokens: list[str] = field(default_factory=list)


class BackgroundStreams:
    """POSTs each body to /api/v1/generate with stream=true and reads the SSE events until
    the stream ends or stop() cancels it (which closes the connection, as a client that
    goes away does)."""

    def __init__(self, base_url: str, bodies: list[dict[str, Any]]) -> None:
        self.base_url = base_url
        self.streams = [Stream(body) for body in bodies]
        self._loop = asyncio.new_event_loop()
        self._tasks: list[asyncio.Task[None]] = []
        self._started = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> BackgroundStreams:
        self._thread.start()
        self._started.wait(timeout=30)
        return self

    def stop(self) -> None:
        for task in self._tasks:
            try:
                self._loop.call_soon_threadsafe(task.cancel)
            except RuntimeError:  # the loop closed: every stream has ended already
                break
        self._thread.join(timeout=60)

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        try:
            self._loop.run_until_complete(self._main())
        finally:
            self._loop.close()

    async def _main(self) -> None:
        limits = httpx.Limits(max_connections=200, max_keepalive_connections=0)
        async with httpx.AsyncClient(base_url=self.base_url, timeout=600, limits=limits) as api:
            self._tasks = [asyncio.ensure_future(self._one(api, s)) for s in self.streams]
            self._started.set()
            await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _one(self, api: httpx.AsyncClient, stream: Stream) -> None:
        body = {**stream.body, "stream": True}
        async with api.stream("POST", "/api/v1/generate", json=body) as resp:
            stream.status = resp.status_code
            if resp.status_code != 200:
                stream.end = json.loads(await resp.aread())
                stream.ended_at = time.monotonic()
                return
            async for line in resp.aiter_lines():
                if not line.startswith("data: "):
                    continue
                event = json.loads(line[6:])
                if event["type"] == "token":
                    stream.tokens.append(event["data"]["token"])
                    if stream.first_token_at is None:
                        stream.first_token_at = time.monotonic()
                elif event["type"] in ("done", "error"):
                    stream.end = event
                    stream.ended_at = time.monotonic()
