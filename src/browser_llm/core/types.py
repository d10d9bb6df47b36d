"""Plain data passed between the layers. No behaviour, no imports from the project."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

__all__ = [
    "ChatMessage",
    "Completion",
    "EmbedInput",
    "Embeddings",
    "FinishReason",
    "GenerationParams",
    "GpuDevice",
    "LoadedModel",
    "Timings",
    "TokenChoice",
    "TokenLogprob",
    "Usage",
]

FinishReason = Literal["stop", "length", "error"]
# One input of an embedding: a text, or token ids of the model's own vocabulary (read as
# they are: no BOS added, nothing re-tokenized).
EmbedInput = str | list[int]


@dataclass(frozen=True)
class ChatMessage:
    role: str
    content: str
    # For chat templates that render tool calls themselves (engine/chat_template.py):
    # an assistant turn's calls as (id, name, arguments JSON) and a tool turn's call id.
    tool_calls: tuple[tuple[str, str, str], ...] = ()
    tool_call_id: str | None = None
    # An earlier assistant turn's reasoning, sent back by the client: templates that render
    # it read `reasoning_content` (or `thinking`); the others leave it out.
    reasoning: str = ""


@dataclass(frozen=True)
class GenerationParams:
    """Everything that shapes one generation. Defaults are documented in docs/api.md."""

    max_tokens: int = 512
    temperature: float = 0.7
    top_p: float = 0.95
    top_k: int = 40
    frequency_penalty: float = 0.0
    presence_penalty: float = 0.0
    repeat_penalty: float = 1.0  # llama.cpp's multiplicative repetition penalty (1: off)
    penalty_last_n: int = 64  # tokens the penalties look back over (-1: the whole context)
    stop: tuple[str, ...] = ()
    seed: int | None = None
    ignore_eos: bool = False
    grammar: str | None = None  # GBNF the output must match (JSON mode / schema)
    # (token id, value added to its logit; -inf bans it): llama.cpp's logit-bias sampler.
    logit_bias: tuple[tuple[int, float], ...] = ()


@dataclass(frozen=True)
class TokenChoice:
    """One token and its log-probability under the model's raw distribution (log-softmax
    of the logits, before temperature, top-k/top-p, penalties or a grammar)."""

    token: int
    piece: bytes
    # None: the model never scored this token (a forced JSON closing after its first token).
    logprob: float | None


@dataclass(frozen=True)
class TokenLogprob:
    """One generated token's log-probability and the most likely tokens at its position."""

    chosen: TokenChoice
    top: tuple[TokenChoice, ...]
    text_offset: int  # characters into the completion text where this token begins


@dataclass(frozen=True)
class Usage:
    prompt_tokens: int
    completion_tokens: int
    # Prompt tokens whose KV cells came from an earlier request (prefix reuse).
    cached_prompt_tokens: int = 0

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


@dataclass(frozen=True)
class Timings:
    """Measured durations in seconds; see docs/api.md for how each is defined."""

    queue_s: float
    time_to_first_token_s: float
    decode_s: float
    prefill_s: float
    total_s: float

    @classmethod
    def from_clock(
        cls, submitted: float, started: float, first: float | None, last: float | None, now: float
    ) -> Timings:
        """Durations from perf_counter readings: arrival, start of work, first and last
        token (None when none came yet), and the end."""
        first = first or now
        last = last or first
        return cls(
            queue_s=started - submitted,
            time_to_first_token_s=first - submitted,
            decode_s=last - first,
            prefill_s=first - started,
            total_s=now - submitted,
        )


@dataclass(frozen=True)
class Completion:
    text: str
    finish_reason: FinishReason
    usage: Usage
    timings: Timings
    max_tokens_clamped: bool = False
    # The engine ended grammar-constrained (JSON) output with its shortest completion
    # because max_tokens was about to run out (finish_reason is then "length").
    closed_early: bool = False
    # That completion's text, the end of `text` (empty when nothing was closed).
    closing: str = ""
    # The stop string that ended the answer (finish_reason "stop"); None: end of text.
    stop_sequence: str | None = None


@dataclass(frozen=True)
class LoadedModel:
    model_id: str
    path: str
    context_length: int
    train_context_length: int
    n_vocab: int
    has_chat_template: bool
    size_bytes: int
    load_time_s: float
    description: str = ""
    metadata: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class GpuDevice:
    """A GPU llama.cpp can offload layers to (ggml's backend device registry)."""

    name: str
    description: str
    kind: Literal["gpu", "igpu"]  # igpu: an integrated GPU that uses host memory
    memory_total_bytes: int
    memory_free_bytes: int  # when the engine process started


@dataclass(frozen=True)
class Embeddings:
    """One vector per input text (L2-normalised), and the tokens the model read."""

    model_id: str
    vectors: list[list[float]]
    prompt_tokens: int
