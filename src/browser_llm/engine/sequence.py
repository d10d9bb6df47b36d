"""One running generation inside the engine: its tokens, sampler, text and clocks."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from browser_llm.core.types import Completion, FinishReason, Timings, Usage
from browser_llm.engine.base import GenerationHandle
from browser_llm.engine.sampling import SamplerChain
from browser_llm.engine.text_stream import TextStream

__all__ = ["PreparedPrompt", "Sequence"]


@dataclass(frozen=True)
class PreparedPrompt:
    tokens: list[int]
    max_tokens: int
    clamped: bool


@dataclass
class Sequence:
    handle: GenerationHandle
    seq_id: int
    prompt: PreparedPrompt
    sampler: SamplerChain
    text: TextStream
    reused: int = 0  # prompt tokens whose KV cells an earlier request left in this slot
    n_fed: int = 0  # prompt tokens already in the KV cache
    n_past: int = 0  # next position
    pending_token: int | None = None  # sampled, to be decoded next step
    decoded: list[int] = field(default_factory=list)  # generated tokens now in the KV cache
    n_generated: int = 0
    admitted_at: float = field(default_factory=time.perf_counter)
    first_token_at: float | None = None
    last_token_at: float | None = None

    def __post_init__(self) -> None:
        self.n_fed = self.n_past = self.reused

    @property
    def prefilling(self) -> bool:
        return self.n_fed < len(self.prompt.tokens)

    def cached_tokens(self) -> list[int]:
        """The tokens whose KV cells this sequence leaves in its slot, in order."""
        return self.prompt.tokens[: self.n_fed] + self.decoded

    def completion(self, finish_reason: FinishReason) -> Completion:
        now = time.perf_counter()
        submitted = self.handle.request.submitted_at
        first = self.first_token_at or now
        last = self.last_token_at or first
        return Completion(
            text=self.text.text,
            finish_reason=finish_reason,
            usage=Usage(len(self.prompt.tokens), self.n_generated, self.reused),
            timings=Timings(
                queue_s=self.admitted_at - submitted,
                time_to_first_token_s=first - submitted,
                prefill_s=first - self.admitted_at,
                decode_s=last - first,
                total_s=now - submitted,
            ),
            max_tokens_clamped=self.prompt.clamped,
        )
