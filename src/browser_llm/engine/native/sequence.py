"""One running generation inside the engine: its tokens, sampler, text and clocks."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from browser_llm.core.types import Completion, FinishReason, Timings, Usage
from browser_llm.engine.base import GenerationHandle
from browser_llm.engine.native.speculation.budget import Backoff, MatchRates
from browser_llm.engine.native.speculation.verify import Unverified
from browser_llm.engine.prompt import PreparedPrompt
from browser_llm.engine.text_stream import TextStream

if TYPE_CHECKING:  # sampling imports llama.cpp, which the server process never loads
    from browser_llm.engine.native.logprobs import LogprobTrail
    from browser_llm.engine.native.sampling import SamplerChain
    from browser_llm.engine.native.speculation.drafts import NgramIndex
    from browser_llm.grammar.closing import JsonBudget

__all__ = ["Sequence"]


@dataclass
class Sequence:
    handle: GenerationHandle
    seq_id: int
    prompt: PreparedPrompt
    sampler: SamplerChain
    text: TextStream
    reused: int = 0  # prompt tokens whose KV cells an earlier request left in this slot
    budget: JsonBudget | None = None  # grammar output: closes before max_tokens runs out
    closed_early: bool = False
    closing: str = ""  # the text of that early closing
    trail: LogprobTrail | None = None  # only for requests that asked for logprobs
    n_fed: int = 0  # prompt tokens already in the KV cache
    n_past: int = 0  # next position
    pending_token: int | None = None  # sampled, to be decoded next step
    # Speculation (engine/native/speculation/): the prompt and output to look drafts up
    # in (None: this sequence does not speculate), this step's draft, its success so far.
    lookup: NgramIndex | None = None
    draft: list[int] = field(default_factory=list)
    draft_matched: int = 0  # the match length this step's draft came from
    acceptance: MatchRates = field(default_factory=MatchRates)
    unverified: Unverified = field(default_factory=Unverified)  # a draft judged for free
    backoff: Backoff = field(default_factory=Backoff)  # steps to sit out after misses
    n_generated: int = 0
    admitted_at: float = field(default_factory=time.perf_counter)
    first_token_at: float | None = None
    last_token_at: float | None = None

    def __post_init__(self) -> None:
        self.n_fed = self.n_past = self.reused

    @property
    def prefilling(self) -> bool:
        return self.n_fed < len(self.prompt.tokens)

    def completion(self, finish_reason: FinishReason) -> Completion:
        return Completion(
            text=self.text.text,
            finish_reason=finish_reason,
            usage=Usage(len(self.prompt.tokens), self.n_generated, self.reused),
            timings=Timings.from_clock(
                self.handle.request.submitted_at,
                self.admitted_at,
                self.first_token_at,
                self.last_token_at,
                time.perf_counter(),
            ),
            max_tokens_clamped=self.prompt.clamped,
            closed_early=self.closed_early,
            closing=self.closing,
            stop_sequence=self.text.matched,
        )
