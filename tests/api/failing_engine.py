"""A FakeEngine whose generations fail after a few tokens: error events mid-stream."""

from __future__ import annotations

import asyncio

from browser_llm.core.errors import BrowserLLMError, InferenceError
from browser_llm.engine.base import Admitted, Failed, GenerationHandle, TokenText
from tests.fakes import FAKE_PIECES, FakeEngine

__all__ = ["FailingEngine"]


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
