"""Pooled embeddings from the loaded model: a second llama.cpp context on the same
weights, with mean pooling, made on first use and freed with the model.

Each text is one decode of all its tokens (pooling needs a whole sequence in one
ubatch), so the engine thread runs one text between decode steps: an embedding
request delays generation by one text's decode, never by the whole request.
"""

from __future__ import annotations

import ctypes
import math
import time
from collections import deque
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any

import llama_cpp

from browser_llm.core.errors import InferenceError, ModelNotLoadedError, ValidationError
from browser_llm.core.types import Embeddings, EmbedInput

__all__ = ["EMBED_SHARE", "MAX_EMBED_TOKENS", "EmbedQueue", "Embedder"]

MAX_EMBED_TOKENS = 2048  # per text; the context (and its one ubatch) holds this many


class Embedder:
    def __init__(self, model: Any, vocab: Any, threads: int, train_ctx: int) -> None:
        self._model = model
        self._vocab = vocab
        self.max_tokens = max(16, min(MAX_EMBED_TOKENS, train_ctx))
        cparams = llama_cpp.llama_context_default_params()
        cparams.n_ctx = self.max_tokens
        cparams.n_batch = self.max_tokens
        cparams.n_ubatch = self.max_tokens
        cparams.n_seq_max = 1
        cparams.n_threads = threads
        cparams.n_threads_batch = threads
        cparams.embeddings = True
        cparams.pooling_type = llama_cpp.LLAMA_POOLING_TYPE_MEAN
        cparams.no_perf = True
        self._ctx = llama_cpp.llama_init_from_model(model, cparams)
        if not self._ctx:
            raise InferenceError("llama.cpp could not create an embedding context")
        self.dimensions = int(llama_cpp.llama_model_n_embd(model))
        self._batch = llama_cpp.llama_batch_init(self.max_tokens, 0, 1)

    def set_threads(self, threads: int) -> None:
        llama_cpp.llama_set_n_threads(self._ctx, threads, threads)

    def embed(self, tokens: list[int]) -> list[float]:
        """The L2-normalised mean of the last layer's states over `tokens`."""
        if not tokens:
            raise ValidationError("input: an empty text has no embedding", {"field": "input"})
        if len(tokens) > self.max_tokens:
            raise ValidationError(
                f"input: a text of {len(tokens)} tokens is longer than the "
                f"{self.max_tokens} an embedding reads",
                {"field": "input", "tokens": len(tokens), "max_tokens": self.max_tokens},
            )
        llama_cpp.llama_memory_clear(llama_cpp.llama_get_memory(self._ctx), True)
        batch = self._batch
        for i, token in enumerate(tokens):
            batch.token[i] = token
            batch.pos[i] = i
            batch.n_seq_id[i] = 1
            batch.seq_id[i][0] = 0
            batch.logits[i] = True
        batch.n_tokens = len(tokens)
        if llama_cpp.llama_decode(self._ctx, batch) != 0:
            raise InferenceError("llama.cpp could not compute the embedding")
        pooled = llama_cpp.llama_get_embeddings_seq(self._ctx, 0)
        if not pooled:
            raise InferenceError("this model gives no pooled embedding")
        values = ctypes.cast(pooled, ctypes.POINTER(ctypes.c_float))[: self.dimensions]
        norm = math.sqrt(sum(v * v for v in values)) or 1.0
        return [v / norm for v in values]

    def free(self) -> None:
        if self._ctx:
            llama_cpp.llama_batch_free(self._batch)
            llama_cpp.llama_free(self._ctx)
            self._ctx = None


@dataclass
class _Job:
    texts: list[EmbedInput]
    done: Future[Embeddings]
    vectors: list[list[float]] = field(default_factory=list)
    tokens: int = 0


# While sequences are decoding, embeddings get at most this share of the engine thread's
# time: a text costs about as much as reading a prompt of its length (several decode
# steps), so one text per step would slow generation several times over.
EMBED_SHARE = 0.3


class EmbedQueue:
    """Embedding requests waiting on the engine thread. One text runs per engine loop turn,
    between decode steps; while sequences decode, texts wait until generation has had
    (1 - EMBED_SHARE) of the time since the last one."""

    def __init__(self) -> None:
        self._jobs: deque[_Job] = deque()
        self._hold_until = 0.0  # monotonic time before which a busy engine embeds nothing

    @property
    def pending(self) -> bool:
        return bool(self._jobs)

    def add(self, texts: list[EmbedInput], done: Future[Embeddings]) -> None:
        self._jobs.append(_Job(texts, done))

    def run_one(self, model: Any, busy: bool) -> None:
        """Embeds the next text with `model` (a LlamaModel, or None: no model loaded);
        `busy`: sequences are decoding, so the text waits for its share of the time."""
        if not self._jobs or (busy and time.monotonic() < self._hold_until):
            return
        job = self._jobs[0]
        started = time.monotonic()
        try:
            if model is None:
                raise ModelNotLoadedError("no model is loaded")
            text = job.texts[len(job.vectors)]
            if isinstance(text, str):
                tokens = model.tokenize(text, add_special=True)
            else:  # the model's own ids, as they are; an unknown id would crash llama.cpp
                tokens = list(text)
                if any(not 0 <= t < model.info.n_vocab for t in tokens):
                    raise ValidationError("input: not a token id of this model", {"field": "input"})
            job.vectors.append(model.embedder().embed(tokens))
            job.tokens += len(tokens)
            took = time.monotonic() - started
            self._hold_until = time.monotonic() + took * (1 - EMBED_SHARE) / EMBED_SHARE
        except BaseException as exc:
            self._jobs.popleft()
            job.done.set_exception(exc)
            return
        if len(job.vectors) == len(job.texts):
            self._jobs.popleft()
            job.done.set_result(Embeddings(model.info.model_id, job.vectors, job.tokens))

    def fail_all(self, error: BaseException) -> None:
        while self._jobs:
            self._jobs.popleft().done.set_exception(error)
