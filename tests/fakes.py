"""A scripted engine for API-shape tests (the real engine is tested in tests/e2e)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence

from browser_llm.core.errors import (
    CONTEXT_LENGTH_EXCEEDED,
    ModelNotLoadedError,
    ValidationError,
)
from browser_llm.core.types import (
    Completion,
    Embeddings,
    EmbedInput,
    GpuDevice,
    LoadedModel,
    Timings,
    TokenChoice,
    TokenLogprob,
    Usage,
)
from browser_llm.engine.base import (
    Admitted,
    EngineState,
    EngineStats,
    Failed,
    Finished,
    GenerationHandle,
    GenerationRequest,
    TokenText,
)

FAKE_PIECES = ("Hello", ",", " wor", "ld", " 🙂")
FAKE_BOS = 256  # the fake vocabulary: bytes 0-255, then BOS
FAKE_VOCAB = 257
FAKE_LOGPROB = -0.5  # every fake token's logprob; alternatives: -1, -2, ...


def fake_logprob(index: int, piece: str, top_n: int, offset: int) -> TokenLogprob:
    """A made-up entry for FAKE_PIECES[index]: the chosen token first, then `top_n - 1`
    alternatives spelled "alt1", "alt2", ... (shape tests only)."""
    chosen = TokenChoice(index, piece.encode(), FAKE_LOGPROB)
    alts = [TokenChoice(1000 + k, f"alt{k}".encode(), -float(k)) for k in range(1, top_n)]
    return TokenLogprob(chosen, (chosen, *alts)[:top_n], offset)


class FakeEngine:
    """Answers every prompt with FAKE_PIECES (cut at max_tokens), on the event loop."""

    def __init__(self, context_length: int = 64) -> None:
        self._model: LoadedModel | None = None
        self._context_length = context_length
        self.loads: list[str] = []
        self.submitted: list[GenerationRequest] = []
        self.gpus: tuple[GpuDevice, ...] = ()
        self.tokenized: list[tuple[str, bool, bool]] = []
        # Scripted answer: these pieces instead of FAKE_PIECES, ended with finish_reason
        # "length" and closed_early when `closed_early` (the engine closed the JSON).
        self.reply: tuple[str, ...] | None = None
        self.closed_early = False
        self.closing = ""  # the end of the reply that the engine's closing wrote

    @property
    def state(self) -> EngineState:
        return "ready" if self._model else "idle"

    @property
    def model(self) -> LoadedModel | None:
        return self._model

    @property
    def gpu_offload_supported(self) -> bool:
        return False

    def not_loaded_reason(self) -> str | None:
        return None

    def check_fits(self, model_id: str, size_bytes: int) -> None:
        return None

    async def embed(self, texts: Sequence[EmbedInput]) -> Embeddings:
        if self._model is None:
            raise ModelNotLoadedError("no model loaded")
        # A fixed, distinct unit vector per text length (shape tests only).
        vectors = [[1.0 if i == len(t) % 8 else 0.0 for i in range(8)] for t in texts]
        tokens = sum(len(t.split()) if isinstance(t, str) else len(t) for t in texts)
        return Embeddings(self._model.model_id, vectors, tokens)

    @property
    def gpu_devices(self) -> tuple[GpuDevice, ...]:
        return self.gpus  # tests set GPUs to see them in /status

    def start(self) -> None:
        pass

    def shutdown(self) -> None:
        pass

    async def load(self, model_id: str, path: str) -> LoadedModel:
        self.loads.append(model_id)
        self._model = LoadedModel(
            model_id, path, self._context_length, 8192, FAKE_VOCAB, True, 1, 0.01
        )
        return self._model

    async def unload(self) -> None:
        self._model = None

    def submit(self, request: GenerationRequest) -> GenerationHandle:
        self.submitted.append(request)
        handle = GenerationHandle(request, asyncio.get_running_loop())
        asyncio.get_running_loop().create_task(self._run(handle))
        return handle

    async def _run(self, handle: GenerationHandle) -> None:
        if self._model is None:
            handle.post(Failed(ModelNotLoadedError("no model")))
            return
        request = handle.request
        # A word is a token; a chat counts its last message's (system turns grow with tools).
        text = request.prompt or (request.messages[-1].content if request.messages else "")
        prompt_tokens = len(text.split())
        if prompt_tokens >= self._context_length:
            handle.post(
                Failed(
                    ValidationError(
                        "prompt too long",
                        {
                            "prompt_tokens": prompt_tokens,
                            "context_length": self._context_length,
                            "reason": CONTEXT_LENGTH_EXCEEDED,  # as engine/prompt.py says
                        },
                    )
                )
            )
            return
        max_tokens = handle.request.params.max_tokens
        handle.post(Admitted(prompt_tokens, max_tokens, False, self._model.model_id))
        pieces = self.reply if self.reply is not None else FAKE_PIECES[:max_tokens]
        top_n, offset = handle.request.logprobs, 0
        for i, piece in enumerate(pieces):
            await asyncio.sleep(0)
            if handle.cancelled:
                return
            handle.tokens_generated += 1
            entries = (fake_logprob(i, piece, top_n, offset),) if top_n is not None else ()
            offset += len(piece)
            handle.post(TokenText(piece, entries))
        reason = "length" if len(pieces) == max_tokens or self.closed_early else "stop"
        now = time.perf_counter() - handle.request.submitted_at
        handle.post(
            Finished(
                Completion(
                    text="".join(pieces),
                    finish_reason=reason,
                    usage=Usage(prompt_tokens, len(pieces)),
                    timings=Timings(0.0, 0.001, 0.001, 0.004, now),
                    closed_early=self.closed_early,
                    closing=self.closing,
                )
            )
        )

    async def tokenize(self, text: str, add_special: bool, parse_special: bool) -> list[int]:
        """UTF-8 bytes as token ids; FAKE_BOS in front when add_special."""
        if self._model is None:
            raise ModelNotLoadedError("no model")
        self.tokenized.append((text, add_special, parse_special))
        return [FAKE_BOS] * add_special + list(text.encode())

    async def detokenize(
        self, tokens: list[int], remove_special: bool, unparse_special: bool
    ) -> str:
        if self._model is None:
            raise ModelNotLoadedError("no model")
        if any(not 0 <= t < FAKE_VOCAB for t in tokens):
            raise ValidationError("not a token id", {"field": "tokens"})
        special = "<s>" if unparse_special and not remove_special else ""
        return "".join(special if t == FAKE_BOS else chr(t) for t in tokens)

    def stats(self) -> EngineStats:
        return EngineStats(running=0, tokens_generated_total=0, memory_errors=0)
