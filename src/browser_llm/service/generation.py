"""Generation: bound the wait queue, submit, wait for admission, stream, record outcomes."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import math
from collections.abc import AsyncIterator, Callable

from browser_llm.core.errors import (
    BrowserLLMError,
    CancelledError,
    ModelNotLoadedError,
    OverloadedError,
    ValidationError,
)
from browser_llm.core.types import Completion, TokenLogprob
from browser_llm.engine.base import (
    Admitted,
    Engine,
    Failed,
    Finished,
    GenerationHandle,
    GenerationRequest,
    Started,
    TokenText,
)
from browser_llm.service.keep_alive import KeepAlive
from browser_llm.service.model_router import ModelRouter
from browser_llm.service.queue_ticket import QueueTicket
from browser_llm.service.stats import RequestStats

__all__ = ["GenerationService", "GenerationStream"]

logger = logging.getLogger(__name__)

# Loads of a request's model that another request's swap may undo before admission.
_SWAP_ATTEMPTS = 3


def _log_finished(model_id: str, completion: Completion) -> None:
    # Sizes and timings only: prompt and output text stay out of the logs.
    usage, timings = completion.usage, completion.timings
    logger.info(
        "generation finished: %d prompt + %d completion tokens, %s, first token %.0f ms",
        usage.prompt_tokens,
        usage.completion_tokens,
        completion.finish_reason,
        timings.time_to_first_token_s * 1000,
        extra={
            "data": {
                "model": model_id,
                "prompt_tokens": usage.prompt_tokens,
                "completion_tokens": usage.completion_tokens,
                "finish_reason": completion.finish_reason,
                "total_time_ms": round(timings.total_s * 1000, 2),
            }
        },
    )


def _shutting_down() -> OverloadedError:
    return OverloadedError(
        "server is shutting down; retry shortly", {"reason": "shutting_down"}, retry_after_s=1
    )


class GenerationStream:
    """An admitted generation: iterate for text pieces (or `pieces()` for text with its
    tokens' log-probabilities), then read `completion` (and `logprobs`, every entry).

    Whoever starts a stream must `close()` it when done with it (a finally block): a
    stream that is never iterated (the client left before the response began) would
    otherwise keep its queue place and its sequence.
    """

    def __init__(
        self,
        service: GenerationService,
        handle: GenerationHandle,
        admitted: Admitted,
        model: str,
        ticket: QueueTicket,
    ) -> None:
        self._service = service
        self._handle = handle
        self._ticket = ticket
        self.admitted = admitted
        self.model_id = model
        self.completion: Completion | None = None
        self.logprobs: list[TokenLogprob] = []  # filled for requests that asked for them
        # Where each text piece ends in the output: the engines send one per token (a
        # character split across tokens, or text held for a stop string, joins pieces).
        self.piece_ends: list[int] = []
        self.asked_logprobs = handle.request.logprobs is not None
        self._failed = False

    async def __aiter__(self) -> AsyncIterator[str]:
        try:
            async for piece in self.pieces():
                if piece.text:
                    yield piece.text
        finally:
            self.close()

    async def pieces(self) -> AsyncIterator[TokenText]:
        """Text events as the engine sent them (with logprobs, the text may be empty)."""
        try:
            async for event in self._handle.events():
                if isinstance(event, TokenText):
                    if event.logprobs:
                        self.logprobs.extend(event.logprobs)
                    if event.text:
                        end = self.piece_ends[-1] if self.piece_ends else 0
                        self.piece_ends.append(end + len(event.text))
                    yield event
                elif isinstance(event, Started):
                    self._ticket.started()
                    self._service.stats.queue_wait(event.queue_s)
                elif isinstance(event, Finished):
                    self.completion = event.completion
                    self._service.stats.succeeded(self.model_id, event.completion)
                    _log_finished(self.model_id, event.completion)
                elif isinstance(event, Failed):
                    self._failed = True
                    error = event.error
                    if self._ticket.shut_down and isinstance(error, CancelledError):
                        error = CancelledError("server is shutting down")
                    self._service.record_failure(error)
                    raise error
        finally:
            self.close()

    def close(self) -> None:
        """Ends this stream's claim on the server; idempotent. Leaving early (client gone,
        consumer stopped, never iterated) cancels the sequence and counts as cancelled."""
        self._ticket.release()
        if self.completion is None and not self._failed:
            self._failed = True
            self._handle.cancel()
            self._service.record_failure(CancelledError("the consumer left"))

    @property
    def request_id(self) -> str:
        return self._handle.request.request_id

    def discard(self) -> None:
        """Withdraws an admitted request that will be submitted again (not a failure)."""
        self._failed = True
        self._handle.cancel()
        self._ticket.release()

    async def collect(self) -> Completion:
        async for _ in self.pieces():
            pass
        assert self.completion is not None
        return self.completion


class GenerationService:
    def __init__(
        self,
        engine: Engine,
        stats: RequestStats,
        parallel: int = 1,
        max_queue: int = 64,
        log_prompts: bool = False,
        swapping_to: Callable[[], str | None] | None = None,
        loading: Callable[[], tuple[str, float] | None] | None = None,
        engines: dict[str, Engine] | None = None,
        router: ModelRouter | None = None,
        keep_alive: KeepAlive | None = None,
    ) -> None:
        self._engine = engine
        self.keep_alive = keep_alive  # the registry engine's models' idle clocks
        self._swapping_to = swapping_to or (lambda: None)
        self._loading = loading or (lambda: None)
        self._engines = engines or {}  # selectable per request by name
        self._router = router  # a request's `model` -> the model that answers it
        self.stats = stats
        self.parallel = max(1, parallel)
        self.max_queue = max_queue
        self.waiting = 0  # submitted, not yet decoding
        self.in_flight = 0  # submitted, not yet ended
        self.tickets: set[QueueTicket] = set()  # requests in flight (for the drain)
        self.idle = asyncio.Event()  # set while nothing is in flight
        self.idle.set()
        self.draining = False
        self._log_prompts = log_prompts

    def begin_drain(self) -> None:
        """Stops admitting: from now on new requests get 503 (shutdown has begun)."""
        self.draining = True

    async def _until_idle(self, timeout_s: float) -> bool:
        try:
            await asyncio.wait_for(self.idle.wait(), timeout_s)
        except TimeoutError:
            return False
        return True

    async def drain(self, grace_s: float) -> bool:
        """Refuses new requests, lets running ones finish for up to grace_s, then cancels
        the rest (their streams end with a CANCELLED error). True if all finished in time."""
        self.begin_drain()
        logger.info("draining: %d generations in flight, grace %.1f s", self.in_flight, grace_s)
        finished = await self._until_idle(grace_s)
        if not finished:
            logger.warning("grace period over: cancelling %d generations", len(self.tickets))
            for ticket in list(self.tickets):
                ticket.stop_for_shutdown()
            # Cancelled sequences end at the engine's next step.
            await self._until_idle(5.0)
        return finished

    def _check_capacity(self) -> None:
        # Counted here, not read from the engine: its running count moves on another
        # thread, before this side has seen a request start (that race rejected requests).
        if self.in_flight >= self.parallel + self.max_queue:
            per_request = self.stats.recent_total_s() or 1.0
            retry = min(60, max(1, math.ceil(self.waiting / self.parallel * per_request)))
            raise OverloadedError(
                f"server is busy: {self.waiting} requests are waiting; retry in {retry} s",
                {"waiting": self.waiting, "max_queue": self.max_queue},
                retry_after_s=retry,
            )

    def refused(self, error: BrowserLLMError) -> None:
        """Counts a request refused on its way in (an unknown model), as start() would."""
        self.stats.started()
        self.record_failure(error)

    async def start(
        self, request: GenerationRequest, keep_alive_s: float | None = None
    ) -> GenerationStream:
        """Submits and waits for admission: bad prompts raise here, before any output.
        `request.model` is a catalog id (service/prepare.py resolved the client's name);
        `keep_alive_s`: how long that model stays loaded once idle (None: as before)."""
        self.stats.started()
        if self.draining:
            self.stats.rejected()
            raise _shutting_down()
        engine = self._engine_for(request)
        wanted = request.model
        # keep_alive unloaded the model: a request naming none loads it again (native only:
        # the clock runs the registry's models).
        native = engine is not self._engines.get("browser")
        if wanted is None and native and self._router is not None and self.keep_alive is not None:
            wanted = self.keep_alive.to_reload()
        if wanted is not None:
            # The catalog id, so an engine holding several models picks the right one.
            request = dataclasses.replace(request, model=wanted)
        for _ in range(_SWAP_ATTEMPTS):
            if wanted is not None:
                await self._route(engine, wanted, request.request_id)
            stream = await self._admit(engine, request, keep_alive_s)
            if wanted is None or stream.model_id == wanted:
                return stream
            # Another request swapped models between our load and our admission: never
            # answer under the wrong name; load ours again.
            stream.discard()
        swapped = ModelNotLoadedError(
            f"model '{wanted}' keeps being swapped out by requests for other models; retry",
            {"model": wanted},
            retry_after_s=1,
        )
        self.record_failure(swapped)
        raise swapped

    async def _route(self, engine: Engine, wanted: str, request_id: str) -> None:
        """Makes `wanted` the engine's model (native: loads it on demand)."""
        assert self._router is not None
        try:
            if engine is self._engine:  # the registry's engine: it can load on demand
                await self._router.ensure_loaded(wanted, request_id)
            else:
                model = engine.model
                if model is None or model.model_id != wanted:
                    loaded = model.model_id if model is not None else "no model"
                    raise ModelNotLoadedError(
                        f"this engine has {loaded} loaded, not '{wanted}'", {"model": wanted}
                    )
        except BrowserLLMError as error:
            self.record_failure(error)
            raise

    async def _admit(
        self, engine: Engine, request: GenerationRequest, keep_alive_s: float | None
    ) -> GenerationStream:
        model = engine.model
        # During a model swap the engine holds no model for a moment: requests queue
        # behind the swap and run on the new model.
        model_id = model.model_id if model is not None else None
        if model_id is None and engine is self._engine:
            model_id = self._swapping_to()
        if model_id is None:
            # An engine may say why (the browser engine: no tab attached yet).
            reason = engine.not_loaded_reason()
            error = ModelNotLoadedError(reason) if reason else self._not_loaded()
            self.record_failure(error)
            raise error
        try:
            self._check_capacity()
        except OverloadedError as error:
            self.stats.rejected()
            raise error
        if self._log_prompts:
            logger.info("request %s prompt: %r", request.request_id, request.prompt)
        ticket = QueueTicket(self)
        handle = ticket.handle = engine.submit(request)
        try:
            event = await handle.next_event()
        except BaseException:
            ticket.release()
            handle.cancel()
            self.stats.cancelled()
            raise
        if isinstance(event, Failed):
            ticket.release()
            self.record_failure(event.error)
            if ticket.shut_down and isinstance(event.error, CancelledError):
                raise _shutting_down()
            raise event.error
        if not isinstance(event, Admitted):  # pragma: no cover - engine contract
            ticket.release()
            handle.cancel()
            raise BrowserLLMError(f"engine sent {type(event).__name__} before admission")
        answering = event.model_id or model_id
        if engine is self._engine:
            ticket.hold(answering, keep_alive_s)
        return GenerationStream(self, handle, event, answering, ticket)

    def _not_loaded(self) -> ModelNotLoadedError:
        loading = self._loading()
        if loading is None:
            return ModelNotLoadedError("no model is loaded; load one with POST /models/{id}/load")
        model_id, eta_s = loading
        return ModelNotLoadedError(
            f"no model is loaded yet: '{model_id}' is loading; retry when /status says ready",
            {"loading": model_id, "estimated_time_ms": round(eta_s * 1000)},
            retry_after_s=min(600, max(1, math.ceil(eta_s))),
        )

    def _engine_for(self, request: GenerationRequest) -> Engine:
        if request.engine is None:
            return self._engine
        engine = self._engines.get(request.engine)
        if engine is None:
            error = ValidationError(
                f"engine {request.engine!r} is not available; use one of {sorted(self._engines)}",
                {"field": "engine"},
            )
            self.record_failure(error)
            raise error
        return engine

    def record_failure(self, error: BrowserLLMError) -> None:
        if isinstance(error, CancelledError):
            self.stats.cancelled()
            return
        client_fault = isinstance(error, ValidationError | ModelNotLoadedError)
        self.stats.failed(server_fault=not client_fault, code=error.code)
        if not client_fault:
            logger.warning("generation failed: %s (%s)", error.message, error.code)
