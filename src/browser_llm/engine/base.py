"""The engine contract: what the service layer may ask of an inference engine.

Generation results travel as events on a per-request handle. An engine
thread posts them; the asyncio side awaits them.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Literal, Protocol

from browser_llm.core.errors import BrowserLLMError
from browser_llm.core.types import ChatMessage, Completion, GenerationParams, LoadedModel

__all__ = [
    "Admitted",
    "Engine",
    "EngineState",
    "EngineStats",
    "Event",
    "Failed",
    "Finished",
    "GenerationHandle",
    "GenerationRequest",
    "TokenText",
]

EngineState = Literal["idle", "loading", "ready", "error"]


@dataclass(frozen=True)
class GenerationRequest:
    """A prompt as the user sent it: plain text (templated unless raw) or chat messages."""

    prompt: str | None = None
    messages: tuple[ChatMessage, ...] | None = None
    raw: bool = False
    params: GenerationParams = field(default_factory=GenerationParams)
    request_id: str = ""
    submitted_at: float = field(default_factory=time.perf_counter)


@dataclass(frozen=True)
class Admitted:
    """The prompt was tokenized and fits: generation will run."""

    prompt_tokens: int
    max_tokens: int
    clamped: bool


@dataclass(frozen=True)
class TokenText:
    text: str


@dataclass(frozen=True)
class Finished:
    completion: Completion


@dataclass(frozen=True)
class Failed:
    error: BrowserLLMError


Event = Admitted | TokenText | Finished | Failed


class GenerationHandle:
    """One request's channel between the engine thread and the event loop."""

    def __init__(self, request: GenerationRequest, loop: asyncio.AbstractEventLoop) -> None:
        self.request = request
        self._loop = loop
        self._queue: asyncio.Queue[Event] = asyncio.Queue()
        self._cancelled = threading.Event()
        self.tokens_generated = 0  # written by the engine thread only
        self.ended = False

    # engine-thread side
    def post(self, event: Event) -> None:
        if isinstance(event, Finished | Failed):
            self.ended = True
        # A closed loop means nobody is listening any more.
        with contextlib.suppress(RuntimeError):
            self._loop.call_soon_threadsafe(self._queue.put_nowait, event)

    @property
    def cancelled(self) -> bool:
        return self._cancelled.is_set()

    # event-loop side
    def cancel(self) -> None:
        """Asks the engine to stop this generation (queued or running) at the next step."""
        self._cancelled.set()

    async def next_event(self) -> Event:
        return await self._queue.get()

    async def events(self) -> AsyncIterator[Event]:
        while True:
            event = await self._queue.get()
            yield event
            if isinstance(event, Finished | Failed):
                return


@dataclass(frozen=True)
class EngineStats:
    queued: int
    running: int
    tokens_generated_total: int
    memory_errors: int


class Engine(Protocol):
    """What an inference engine offers. Implementations own their threads."""

    @property
    def state(self) -> EngineState: ...

    @property
    def model(self) -> LoadedModel | None: ...

    @property
    def gpu_offload_supported(self) -> bool: ...

    def start(self) -> None: ...

    def shutdown(self) -> None: ...

    async def load(self, model_id: str, path: str) -> LoadedModel: ...

    async def unload(self) -> None: ...

    def submit(self, request: GenerationRequest) -> GenerationHandle: ...

    def stats(self) -> EngineStats: ...
