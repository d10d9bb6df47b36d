"""The engine thread's inbox, as its callers use it: each call puts one command and
returns at once (a future, or an awaitable on the event loop); the thread runs them in
arrival order. Thread-safe: the engine process's reader calls the *_future forms."""

from __future__ import annotations

import asyncio
import queue
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from typing import Any

from browser_llm.core.types import Embeddings, EmbedInput, LoadedModel
from browser_llm.engine.base import GenerationHandle, GenerationRequest
from browser_llm.engine.native.commands import Command, Embed, Load, Submit, Unload, VocabOp
from browser_llm.engine.native.vocab_ops import detokenize_work, tokenize_work

__all__ = ["CommandInbox"]


class CommandInbox:
    def __init__(self) -> None:
        self._inbox: queue.SimpleQueue[Command] = queue.SimpleQueue()

    async def load(self, model_id: str, path: str) -> LoadedModel:
        return await asyncio.wrap_future(self.load_future(model_id, path))

    async def unload(self) -> None:
        await asyncio.wrap_future(self.unload_future())

    def submit(self, request: GenerationRequest) -> GenerationHandle:
        handle = GenerationHandle(request, asyncio.get_running_loop())
        self.submit_handle(handle)
        return handle

    async def embed(self, texts: Sequence[EmbedInput]) -> Embeddings:
        return await asyncio.wrap_future(self.embed_future(texts))

    async def tokenize(self, text: str, add_special: bool, parse_special: bool) -> list[int]:
        work = tokenize_work(text, add_special, parse_special)
        return list(await asyncio.wrap_future(self.vocab_future(work)))

    async def detokenize(
        self, tokens: list[int], remove_special: bool, unparse_special: bool
    ) -> str:
        work = detokenize_work(tokens, remove_special, unparse_special)
        return str(await asyncio.wrap_future(self.vocab_future(work)))

    def load_future(self, model_id: str, path: str) -> Future[LoadedModel]:
        done: Future[LoadedModel] = Future()
        self._inbox.put(Load(model_id, path, done))
        return done

    def embed_future(self, texts: Sequence[EmbedInput]) -> Future[Embeddings]:
        done: Future[Embeddings] = Future()
        self._inbox.put(Embed(list(texts), done))
        return done

    def unload_future(self) -> Future[None]:
        done: Future[None] = Future()
        self._inbox.put(Unload(done))
        return done

    def submit_handle(self, handle: GenerationHandle) -> None:
        self._inbox.put(Submit(handle))

    def vocab_future(self, work: Callable[[Any], Any]) -> Future[Any]:
        done: Future[Any] = Future()
        self._inbox.put(VocabOp(work, done))
        return done
