"""FakeEngines for error paths: one that fails mid-stream, one that stalls until cancelled."""

from __future__ import annotations

import asyncio

from browser_llm.core.errors import BrowserLLMError, InferenceError
from browser_llm.engine.base import Admitted, Failed, GenerationHandle, TokenText
from tests.fakes import FAKE_PIECES, FakeEngine

__all__ = ["FailingEngine", "StallingEngine"]


class FailingEngine(FakeEngine):
    """Admits every prompt, sends `tokens` pieces, then fails with `error`."""

    def __init__(self, tokens: int = 2, error: BrowserLLMError | None = None) -> None:
        super().__init__()
        self.tokens = tokens
        self.error = error or InferenceError("decode failed", {"reason": "test"})

    async def _run(self, handle: GenerationHandle) -> None:
        assert self.model is not None
        handle.post(Admitted(1, handle.request.params.max_tokens, False, self.model.model_id))
        for piece in FAKE_PIECES[: self.tokens]:
            await asyncio.sleep(0)
            handle.tokens_generated += 1
            handle.post(TokenText(piece))
        await asyncio.sleep(0)
        handle.post(Failed(self.error))


class StallingEngine(FakeEngine):
    """Admits every prompt, sends one piece, then produces nothing until cancelled: a
    generation that is certainly still running when the test aborts it."""

    def __init__(self) -> None:
        super().__init__()
        self.ended: list[str] = []  # request ids whose generation saw the cancel

    async def _run(self, handle: GenerationHandle) -> None:
        assert self.model is not None
        handle.post(Admitted(1, handle.request.params.max_tokens, False, self.model.model_id))
        handle.tokens_generated += 1
        handle.post(TokenText(FAKE_PIECES[0]))
        while not handle.cancelled:
            await asyncio.sleep(0.005)
        self.ended.append(handle.request.request_id)
