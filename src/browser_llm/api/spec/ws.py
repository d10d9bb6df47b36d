"""WebSocket API at /ws: generate (several at once), abort, subscribe to metrics and logs."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from typing import Any

import pydantic
from fastapi import APIRouter, WebSocket, WebSocketDisconnect

from browser_llm.api.envelope import new_request_id
from browser_llm.api.error_shapes import stream_error_data, stream_error_of
from browser_llm.api.services import services
from browser_llm.api.spec.calls import to_call
from browser_llm.api.spec.render import stream_events
from browser_llm.api.spec.schemas import GenerateRequestBody
from browser_llm.core.errors import BrowserLLMError, CancelledError
from browser_llm.observability.logs import LEVELS
from browser_llm.service.answer import Answers
from browser_llm.service.calls import Call
from browser_llm.service.generation import GenerationService, GenerationStream
from browser_llm.service.stats import RequestStats

__all__ = ["router"]

router = APIRouter(tags=["websocket"])
logger = logging.getLogger(__name__)

SEND_QUEUE = 256  # messages waiting for a slow client, per socket
STATUS_EVERY_S = 5.0
MAX_ID = 128


NO_ID = ""  # the id of errors about a message whose own id could not be read


def _error(msg_id: str, code: str, message: str, details: Any = None) -> dict[str, Any]:
    return {"type": "error", "id": msg_id, "data": stream_error_data(code, message, details)}


class WsSession:
    """One socket: its generations by id, its subscription, its bounded send queue."""

    def __init__(self, ws: WebSocket) -> None:
        self.ws = ws
        svc = services(ws)
        self.generation: GenerationService = svc.generation
        self.answers: Answers = svc.answers
        self.stats: RequestStats = svc.stats
        self.limiter = svc.limiter
        self.out: asyncio.Queue[dict[str, Any]] = asyncio.Queue(maxsize=SEND_QUEUE)
        self.tasks: dict[str, asyncio.Task[None]] = {}
        self.sub_id: str | None = None
        self.sub_events: set[str] = set()
        self.sub_level = LEVELS["info"]
        self.dropped = 0
        self.loop = asyncio.get_running_loop()
        self.rate_client = str(ws.scope.get("state", {}).get("rate_client", "unknown"))

    async def run(self) -> None:
        sender = asyncio.create_task(self._send_loop())
        ticker = asyncio.create_task(self._status_loop())
        try:
            while True:
                try:
                    text = await self.ws.receive_text()
                except (WebSocketDisconnect, RuntimeError, KeyError):
                    break
                await self._handle(text)
        finally:
            self._unsubscribe()
            for task in self.tasks.values():
                task.cancel()  # a closed socket aborts its generations
            await asyncio.gather(*self.tasks.values(), return_exceptions=True)
            ticker.cancel()
            sender.cancel()

    async def _send_loop(self) -> None:
        with contextlib.suppress(WebSocketDisconnect, RuntimeError):
            while True:
                message = await self.out.get()
                await self.ws.send_text(json.dumps(message, ensure_ascii=False))

    async def _status_loop(self) -> None:
        while True:
            await asyncio.sleep(STATUS_EVERY_S)
            if "metric" in self.sub_events:
                stats = self.stats
                self._offer(
                    "metric",
                    {
                        "kind": "status",
                        "queued": self.generation.waiting,
                        "requests_total": stats.requests_total,
                        "requests_success": stats.requests_success,
                        "requests_error": stats.requests_error,
                        "events_dropped": self.dropped,
                    },
                )

    async def _handle(self, text: str) -> None:
        try:
            message = json.loads(text)
        except json.JSONDecodeError:
            await self.out.put(_error(NO_ID, "VALIDATION_ERROR", "message is not valid JSON"))
            return
        if not isinstance(message, dict):
            await self.out.put(_error(NO_ID, "VALIDATION_ERROR", "message must be a JSON object"))
            return
        msg_id, kind = message.get("id"), message.get("type")
        if not isinstance(msg_id, str) or not 0 < len(msg_id) <= MAX_ID:
            await self.out.put(
                _error(NO_ID, "VALIDATION_ERROR", f"id must be a string of 1-{MAX_ID} characters")
            )
            return
        handlers = {
            "generate": self._generate,
            "abort": self._abort,
            "subscribe": self._subscribe,
            "unsubscribe": self._unsubscribe_msg,
        }
        handler = handlers.get(kind) if isinstance(kind, str) else None
        if handler is None:
            await self.out.put(
                _error(msg_id, "VALIDATION_ERROR", f"unknown type {kind!r}; use {sorted(handlers)}")
            )
            return
        await handler(msg_id, message.get("payload"))

    async def _generate(self, msg_id: str, payload: Any) -> None:
        if msg_id in self.tasks:
            await self.out.put(_error(msg_id, "VALIDATION_ERROR", f"id {msg_id!r} is running"))
            return
        decision = self.limiter.hit("generate", self.rate_client)
        if not decision.allowed:
            await self.out.put(
                _error(msg_id, "RATE_LIMIT", f"rate limit of {decision.limit} per minute reached")
            )
            return
        if isinstance(payload, dict):
            payload = {k: v for k, v in payload.items() if k != "stream"}
        try:
            body = GenerateRequestBody.model_validate(payload)
            call = to_call(body, new_request_id(), time.perf_counter())
        except pydantic.ValidationError as exc:
            first = exc.errors()[0]
            field = ".".join(str(p) for p in first.get("loc", ())) or "payload"
            await self.out.put(
                _error(msg_id, "VALIDATION_ERROR", f"{field}: {first['msg']}", {"field": field})
            )
            return
        except BrowserLLMError as exc:
            await self.out.put(_error(msg_id, exc.code, exc.message, exc.details))
            return
        task = asyncio.create_task(self._run_generation(msg_id, body, call))
        self.tasks[msg_id] = task
        task.add_done_callback(lambda _t: self.tasks.pop(msg_id, None))

    async def _run_generation(self, msg_id: str, body: GenerateRequestBody, call: Call) -> None:
        stream: GenerationStream | None = None
        try:
            answer = await self.answers.start(call)
            stream = answer.stream
            # The same events as the SSE stream's, each with this generation's id.
            async for event in stream_events(answer, body):
                await self.out.put({**event, "id": msg_id})
        except BrowserLLMError as exc:  # refused before it started
            await self.out.put({"type": "error", "id": msg_id, "data": stream_error_of(exc)})
        except asyncio.CancelledError:
            # Aborted (or the socket closed): the documented final message.
            with contextlib.suppress(asyncio.QueueFull):
                self.out.put_nowait(_error(msg_id, CancelledError.code, "aborted"))
            raise
        finally:
            if stream is not None:
                stream.close()  # frees the sequence even when cancelled between tokens

    async def _abort(self, msg_id: str, _payload: Any) -> None:
        task = self.tasks.get(msg_id)
        if task is None:
            await self.out.put(
                _error(msg_id, "NOT_FOUND", f"no running generation with id {msg_id!r}")
            )
            return
        task.cancel()

    async def _subscribe(self, msg_id: str, payload: Any) -> None:
        events = payload.get("events") if isinstance(payload, dict) else None
        level = payload.get("level", "info") if isinstance(payload, dict) else "info"
        if (
            not isinstance(events, list)
            or not events
            or not set(events) <= {"metric", "log"}
            or level not in LEVELS
        ):
            await self.out.put(
                _error(
                    msg_id,
                    "VALIDATION_ERROR",
                    "payload must be {events: ['metric', 'log'], level?: debug|info|warn|error}",
                )
            )
            return
        self._unsubscribe()
        self.sub_id, self.sub_events, self.sub_level = msg_id, set(events), LEVELS[level]
        self.stats.hub.subscribe(self._listener)

    async def _unsubscribe_msg(self, msg_id: str, _payload: Any) -> None:
        if self.sub_id != msg_id:
            await self.out.put(_error(msg_id, "NOT_FOUND", f"no subscription with id {msg_id!r}"))
            return
        self._unsubscribe()

    def _unsubscribe(self) -> None:
        self.stats.hub.unsubscribe(self._listener)
        self.sub_id, self.sub_events = None, set()

    def _listener(self, kind: str, data: dict[str, Any]) -> None:
        # Called on any thread (the engine logs too): hop onto this socket's loop.
        with contextlib.suppress(RuntimeError):
            self.loop.call_soon_threadsafe(self._offer, kind, data)

    def _offer(self, kind: str, data: dict[str, Any]) -> None:
        if kind not in self.sub_events or self.sub_id is None:
            return
        if kind == "log" and LEVELS.get(str(data.get("level")), 0) < self.sub_level:
            return
        try:
            self.out.put_nowait({"type": kind, "id": self.sub_id, "data": data})
        except asyncio.QueueFull:
            self.dropped += 1  # events give way to generation output


@router.websocket("/ws")
async def websocket_api(ws: WebSocket) -> None:
    await ws.accept()
    await WsSession(ws).run()
