"""Generation: submit to the engine, wait for admission, stream, record outcomes."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator

from browser_llm.core.errors import (
    BrowserLLMError,
    CancelledError,
    ModelNotLoadedError,
    ValidationError,
)
from browser_llm.core.types import Completion
from browser_llm.engine.base import (
    Admitted,
    Engine,
    Failed,
    Finished,
    GenerationHandle,
    GenerationRequest,
    TokenText,
)
from browser_llm.service.stats import RequestStats

__all__ = ["GenerationService", "GenerationStream"]

logger = logging.getLogger(__name__)


class GenerationStream:
    """An admitted generation: iterate for text pieces, then read `completion`."""

    def __init__(
        self, service: GenerationService, handle: GenerationHandle, admitted: Admitted, model: str
    ) -> None:
        self._service = service
        self._handle = handle
        self.admitted = admitted
        self.model_id = model
        self.completion: Completion | None = None
        self._failed = False

    async def __aiter__(self) -> AsyncIterator[str]:
        try:
            async for event in self._handle.events():
                if isinstance(event, TokenText):
                    yield event.text
                elif isinstance(event, Finished):
                    self.completion = event.completion
                    self._service.record_success(self.model_id, event.completion)
                elif isinstance(event, Failed):
                    self._failed = True
                    self._service.record_failure(event.error)
                    raise event.error
        finally:
            # Leaving early (client gone, consumer stopped): free the sequence.
            if self.completion is None and not self._failed:
                self._handle.cancel()
                self._service.record_failure(CancelledError("the consumer left"))

    def cancel(self) -> None:
        self._handle.cancel()

    async def collect(self) -> Completion:
        async for _ in self:
            pass
        assert self.completion is not None
        return self.completion


class GenerationService:
    def __init__(self, engine: Engine, stats: RequestStats, log_prompts: bool = False) -> None:
        self._engine = engine
        self._stats = stats
        self._log_prompts = log_prompts

    async def start(self, request: GenerationRequest) -> GenerationStream:
        """Submits and waits for admission: bad prompts raise here, before any output."""
        self._stats.started()
        model = self._engine.model
        if model is None:
            error = ModelNotLoadedError("no model is loaded; load one with POST /models/{id}/load")
            self.record_failure(error)
            raise error
        if self._log_prompts:
            logger.info("request %s prompt: %r", request.request_id, request.prompt)
        handle = self._engine.submit(request)
        try:
            event = await handle.next_event()
        except BaseException:
            handle.cancel()
            raise
        if isinstance(event, Failed):
            self.record_failure(event.error)
            raise event.error
        if not isinstance(event, Admitted):  # pragma: no cover - engine contract
            handle.cancel()
            raise BrowserLLMError(f"engine sent {type(event).__name__} before admission")
        return GenerationStream(self, handle, event, model.model_id)

    async def generate(self, request: GenerationRequest) -> Completion:
        stream = await self.start(request)
        return await stream.collect()

    def record_success(self, model_id: str, completion: Completion) -> None:
        self._stats.succeeded(model_id, completion)

    def record_failure(self, error: BrowserLLMError) -> None:
        if isinstance(error, CancelledError):
            self._stats.cancelled()
            return
        client_fault = isinstance(error, ValidationError | ModelNotLoadedError)
        self._stats.failed(server_fault=not client_fault)
