"""The engine contract: what the service layer may ask of an inference engine.

Generation results travel as events on a per-request handle. An engine
thread posts them; the asyncio side awaits them.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import threading
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from typing import Literal, Protocol

from browser_llm.core.errors import BrowserLLMError
from browser_llm.core.types import (
    ChatMessage,
    Completion,
    Embeddings,
    EmbedInput,
    GenerationParams,
    GpuDevice,
    LoadedModel,
    TokenLogprob,
)

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
    "Started",
    "TokenText",
    "post_all",
    "summed_counters",
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
    engine: str | None = None  # "native" | "browser"; None: the server's default
    # The catalog id of the model to answer (the service resolved the client's name and
    # loaded it); an engine holding several models picks by it. None: the loaded one.
    model: str | None = None
    submitted_at: float = field(default_factory=time.perf_counter)
    # The client sees nothing before the end (no streaming): an engine may run it again
    # from scratch after a failure mid-generation (the cluster's remote engine does).
    buffered: bool = False
    # OpenAI-shaped function list (JSON text) the model's own chat template renders
    # (service/tools/hermes.py); None: no tools, or tools described in the prompt already.
    tools: str | None = None
    # Log-probabilities of each generated token with this many most likely alternatives
    # (0-20); None: not asked for, and nothing is computed (engine/native/logprobs.py).
    logprobs: int | None = None
    # Switches for the chat template, such as ("enable_thinking", False): the service reads
    # which one a template has (service/thinking/plan.py); engines only pass them to it.
    template_vars: tuple[tuple[str, bool], ...] = ()


@dataclass(frozen=True)
class Admitted:
    """The prompt was tokenized and fits: generation will run."""

    prompt_tokens: int
    max_tokens: int
    clamped: bool
    model_id: str = ""  # the model that will run it (a load may have been queued before)


@dataclass(frozen=True)
class Started:
    """The sequence left the queue and its prompt is being processed."""

    queue_s: float


@dataclass(frozen=True)
class TokenText:
    text: str
    # Requests with logprobs: the entries of the tokens whose text begins in `text`
    # (may come with empty text at the end); always empty otherwise.
    logprobs: tuple[TokenLogprob, ...] = ()


@dataclass(frozen=True)
class Finished:
    completion: Completion


@dataclass(frozen=True)
class Failed:
    error: BrowserLLMError


Event = Admitted | Started | TokenText | Finished | Failed


class GenerationHandle:
    """One request's channel between the engine thread and the event loop."""

    def __init__(self, request: GenerationRequest, loop: asyncio.AbstractEventLoop | None) -> None:
        # loop is None for handles whose events go elsewhere (the engine process
        # forwards them over its socket instead of to an event loop).
        self.request = request
        self._loop = loop
        self._queue: asyncio.Queue[Event] = asyncio.Queue()
        self._cancelled = threading.Event()
        self.tokens_generated = 0  # written by the engine thread only
        self.finished = False  # its last event (Finished or Failed) reached the event loop

    # engine-thread side
    def post(self, event: Event) -> None:
        post_all([(self, event)])

    def _put(self, event: Event) -> None:
        if isinstance(event, Finished | Failed):
            self.finished = True
        self._queue.put_nowait(event)

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


def _deliver(items: list[tuple[GenerationHandle, Event]]) -> None:
    for handle, event in items:
        handle._put(event)


def post_all(items: list[tuple[GenerationHandle, Event]]) -> None:
    """Hands events to their event loops with one wake-up per loop.

    Waking the loop costs a syscall and a context switch; a decode step that
    produced tokens for eight sequences wakes it once, not eight times.
    """
    by_loop: dict[asyncio.AbstractEventLoop, list[tuple[GenerationHandle, Event]]] = {}
    for handle, event in items:
        if handle._loop is not None:
            by_loop.setdefault(handle._loop, []).append((handle, event))
    for loop, batch in by_loop.items():
        # A closed loop means nobody is listening any more.
        with contextlib.suppress(RuntimeError):
            loop.call_soon_threadsafe(_deliver, batch)


@dataclass(frozen=True)
class EngineStats:
    """Engine counters. Queue length is the service's (GenerationService.waiting)."""

    running: int
    tokens_generated_total: int
    memory_errors: int
    slot_moves: int = 0  # KV stream copies that kept running sequence ids one run
    restarts: int = 0  # engine processes started again after one died
    threads: int = 0  # llama.cpp threads in use now (fewer while other processes hold cores)
    threads_max: int = 0  # the configured count
    foreign_load: float = 0.0  # cores other processes used over the last interval
    step_ms: float = 0.0  # moving average of a decode step's wall time
    # Speculative decoding: draft tokens verified, and of those the ones given out.
    draft_tokens: int = 0
    draft_tokens_accepted: int = 0
    # The prompt cache on disk: its folder's bytes and files; lookups (long prompts with a
    # saved prefix) and hits (prefixes loaded) since the engine (process) started.
    prompt_cache_bytes: int = 0
    prompt_cache_entries: int = 0
    prompt_cache_lookups: int = 0
    prompt_cache_hits: int = 0
    # What only one kind of engine can tell, by block name: "process" (the engine process:
    # pid, state, restarts, last_exit, failure), "cluster" (the replicas behind an ingress).
    details: dict[str, dict[str, object]] = field(default_factory=dict)


# Counters that add up over several engines (a pool's, a cluster's replicas).
_SUMMED = (
    "running",
    "tokens_generated_total",
    "memory_errors",
    "slot_moves",
    "restarts",
    "prompt_cache_lookups",
    "prompt_cache_hits",
    "draft_tokens",
    "draft_tokens_accepted",
)


def summed_counters(base: EngineStats, stats: list[EngineStats]) -> EngineStats:
    """`base` with each counter summed over several engines' stats."""
    sums = {name: sum(getattr(s, name) for s in stats) for name in _SUMMED}
    return dataclasses.replace(base, **sums)


class Engine(Protocol):
    """What an inference engine offers. Implementations own their threads."""

    @property
    def state(self) -> EngineState: ...

    @property
    def model(self) -> LoadedModel | None: ...

    @property
    def gpu_offload_supported(self) -> bool: ...

    @property
    def gpu_devices(self) -> tuple[GpuDevice, ...]:
        """The GPUs this engine can offload to (none on a CPU-only build)."""
        ...

    def start(self) -> None: ...

    def shutdown(self) -> None: ...

    async def load(self, model_id: str, path: str) -> LoadedModel: ...

    async def unload(self) -> None: ...

    def submit(self, request: GenerationRequest) -> GenerationHandle: ...

    async def tokenize(self, text: str, add_special: bool, parse_special: bool) -> list[int]:
        """The loaded model's token ids for text: `add_special` adds BOS/EOS as the model
        is configured to; `parse_special` reads special-token text (<|im_end|>) as the
        special token. MODEL_NOT_LOADED without a model; NOT_IMPLEMENTED if unsupported."""
        ...

    async def detokenize(
        self, tokens: list[int], remove_special: bool, unparse_special: bool
    ) -> str:
        """Text of token ids (400 for an id outside the vocabulary): `remove_special` drops
        a leading BOS / trailing EOS; `unparse_special` renders special tokens as text."""
        ...

    def stats(self) -> EngineStats: ...

    def not_loaded_reason(self) -> str | None:
        """Why no model is loaded, when the engine knows better than "none was loaded"
        (no browser tab attached, a model marked failed); None otherwise."""
        ...

    def check_fits(self, model_id: str, size_bytes: int) -> None:
        """Raises (STORAGE_ERROR) at once for a model this engine cannot hold."""
        ...

    async def embed(self, texts: Sequence[EmbedInput]) -> Embeddings:
        """One pooled, L2-normalised vector per input (a text, or the model's token ids),
        from the loaded model."""
        ...
