"""Ollama's /api/generate and /api/chat bodies -> a GenerationRequest, and the answer's
objects (stream lines and the final one with Ollama's counts and nanosecond durations).

Fields that would change the answer in ways this server cannot follow are refused with
400 naming them; see docs/api.md for the table of every field.
"""

from __future__ import annotations

from typing import Any

from browser_llm.api.logprob_views import logprobs_option
from browser_llm.api.ollama.options import generation_params, json_format
from browser_llm.api.ollama.protocol import OllamaChatRequest, OllamaGenerateRequest
from browser_llm.api.ollama.views import iso_time
from browser_llm.core.errors import ValidationError
from browser_llm.core.types import Completion, GenerationParams

__all__ = [
    "check_chat_fields",
    "check_generate_fields",
    "final_fields",
    "logprobs_of",
    "params_of",
    "text_line",
]

_NS = 1_000_000_000


def _refuse(field: str, why: str) -> ValidationError:
    return ValidationError(f"{field}: {why}", {"field": field})


def _check_common(body: OllamaGenerateRequest | OllamaChatRequest) -> None:
    if body.think not in (None, False, "", "false"):
        raise _refuse("think", "this server's models do not think; leave it unset or false")
    logprobs_of(body)  # 400 for a bad top_logprobs before anything runs
    if body.debug_render_only:
        raise _refuse("_debug_render_only", "not supported")


def logprobs_of(body: OllamaGenerateRequest | OllamaChatRequest) -> int | None:
    """Alternatives per token the engine reports (None: logprobs off)."""
    return logprobs_option(body.logprobs, body.top_logprobs)


def check_generate_fields(body: OllamaGenerateRequest) -> None:
    _check_common(body)
    if body.suffix:
        raise _refuse("suffix", "fill-in-the-middle is not supported")
    if body.template:
        raise _refuse(
            "template", "the model's own chat template (Jinja, from the GGUF) is always used"
        )
    if body.context:
        raise _refuse("context", "token context from an earlier answer is not supported")
    if body.images:
        raise _refuse("images", "this server's models read text only")
    for name in ("width", "height", "steps"):
        if getattr(body, name) is not None:
            raise _refuse(name, "image generation is not supported")
    if body.raw and body.system:
        raise _refuse("system", "raw prompts are sent as they are; put the system text in them")


def check_chat_fields(body: OllamaChatRequest) -> None:
    _check_common(body)


def params_of(
    body: OllamaGenerateRequest | OllamaChatRequest, context_size: int, grammar: str | None = None
) -> GenerationParams:
    """Sampling from `options`; the grammar from `format` unless one is given (tools)."""
    fmt = grammar if grammar is not None else json_format(body.format)
    return generation_params(body.options, fmt, context_size)


def text_line(model: str, text: str, chat: bool) -> dict[str, Any]:
    """One streamed piece (or, with done fields added, the whole answer)."""
    line: dict[str, Any] = {"model": model, "created_at": iso_time()}
    if chat:
        line["message"] = {"role": "assistant", "content": text}
    else:
        line["response"] = text
    line["done"] = False
    return line


def final_fields(completion: Completion, load_s: float) -> dict[str, Any]:
    """done, done_reason and Ollama's counts and durations (nanoseconds)."""
    t, usage = completion.timings, completion.usage
    return {
        "done": True,
        "done_reason": completion.finish_reason,
        "total_duration": round(t.total_s * _NS),  # from arrival: includes a load
        "load_duration": round(load_s * _NS),
        "prompt_eval_count": usage.prompt_tokens,
        "prompt_eval_duration": round(t.prefill_s * _NS),
        "eval_count": usage.completion_tokens,
        "eval_duration": round(t.decode_s * _NS),
    }
