"""Ollama's `options`, `format` and `keep_alive` -> this server's generation parameters.

Every option Ollama defines is in one of three sets: honoured (mapped to our sampling),
ignored (load-time and performance knobs that cannot change the answer) or refused
unless left at the value that means "off" (samplers this server does not run). An
unknown option is refused too: it might be a typo of one that matters.
"""

from __future__ import annotations

import math
from dataclasses import replace
from typing import Any

from browser_llm.core.errors import ValidationError
from browser_llm.core.types import GenerationParams
from browser_llm.grammar.check import SchemaField
from browser_llm.service.calls import OutputFormat

__all__ = [
    "IGNORED_OPTIONS",
    "OFF_VALUES",
    "SAMPLING_OPTIONS",
    "UNTIL_DONE",
    "check_embedding_options",
    "generation_params",
    "output_format",
]

# Ollama's defaults (api/types.go DefaultOptions), so a client sees Ollama's sampling.
_OLLAMA_DEFAULTS = GenerationParams(
    max_tokens=0,  # set below: num_predict -1
    temperature=0.8,
    top_p=0.9,
    top_k=40,
)
# num_predict -1 (until done) and -2 (fill the context): clamped to the room in the context.
UNTIL_DONE = 1 << 20

# Load-time and performance settings: the server's own configuration decides these, and
# none changes which tokens are sampled (num_ctx: a prompt that does not fit our context
# is refused with 400, never truncated).
IGNORED_OPTIONS = frozenset(
    {
        "num_ctx", "num_batch", "num_gpu", "main_gpu", "num_thread", "numa", "use_mmap",
        "use_mlock", "low_vram", "f16_kv", "vocab_only", "logits_all", "embedding_only",
        "num_keep", "penalize_newline", "draft_num_predict",
    }
)  # fmt: skip
# Samplers this server does not run: accepted only at the value that switches them off.
OFF_VALUES: dict[str, float] = {
    "min_p": 0.0,
    "typical_p": 1.0,
    "tfs_z": 1.0,
    "mirostat": 0,
    "mirostat_tau": 5.0,
    "mirostat_eta": 0.1,
}


def _number(name: str, value: Any, low: float, high: float) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ValidationError(f"options.{name}: must be a number", {"field": f"options.{name}"})
    if not low <= value <= high:
        raise ValidationError(
            f"options.{name}: must be between {low:g} and {high:g}", {"field": f"options.{name}"}
        )
    return float(value)


def _integer(name: str, value: Any) -> int:
    if isinstance(value, float) and value.is_integer():
        value = int(value)  # JSON clients may send 64.0
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValidationError(f"options.{name}: must be an integer", {"field": f"options.{name}"})
    return value


def _stop(value: Any) -> tuple[str, ...]:
    items = [value] if isinstance(value, str) else value
    if (
        not isinstance(items, list)
        or len(items) > 16
        or not all(isinstance(s, str) and 1 <= len(s) <= 256 for s in items)
    ):
        raise ValidationError(
            "options.stop: up to 16 strings of 1-256 characters", {"field": "options.stop"}
        )
    return tuple(items)


def _max_tokens(value: Any) -> int:
    n = _integer("num_predict", value)
    if n in (-1, -2):
        return UNTIL_DONE
    if n < 1:
        raise ValidationError(
            "options.num_predict: -1 (until done), -2 (fill the context) or a positive count",
            {"field": "options.num_predict"},
        )
    return min(n, UNTIL_DONE)


def generation_params(options: dict[str, Any] | None, context_size: int) -> GenerationParams:
    """Our parameters for Ollama's options (Ollama's defaults where an option is absent)."""
    params = replace(_OLLAMA_DEFAULTS, max_tokens=UNTIL_DONE)
    changes: dict[str, Any] = {}
    for name, value in (options or {}).items():
        if value is None or name in IGNORED_OPTIONS:
            continue
        if name in OFF_VALUES:
            if isinstance(value, bool) or value != OFF_VALUES[name]:
                raise ValidationError(
                    f"options.{name}: not supported by this server (only {OFF_VALUES[name]:g}, "
                    "which switches it off, is accepted)",
                    {"field": f"options.{name}"},
                )
        elif name == "temperature":
            changes["temperature"] = _number(name, value, 0, 2)
        elif name == "top_p":
            changes["top_p"] = _number(name, value, 0, 1)
        elif name == "top_k":
            changes["top_k"] = max(0, _integer(name, value))  # 0 or less: no top-k cut
        elif name in ("frequency_penalty", "presence_penalty"):
            changes[name] = _number(name, value, -2, 2)
        elif name == "repeat_penalty":
            changes["repeat_penalty"] = _number(name, value, 0, 2)
        elif name == "repeat_last_n":
            n = _integer(name, value)
            if not -1 <= n <= context_size:
                raise ValidationError(
                    f"options.repeat_last_n: -1 (the whole context) to {context_size}",
                    {"field": "options.repeat_last_n"},
                )
            changes["penalty_last_n"] = context_size if n == -1 else n  # llama.cpp: -1 is off
        elif name == "seed":
            seed = _integer(name, value)
            changes["seed"] = None if seed < 0 else seed & 0xFFFFFFFF  # -1: random
        elif name == "num_predict":
            changes["max_tokens"] = _max_tokens(value)
        elif name == "stop":
            changes["stop"] = _stop(value)
        else:
            raise ValidationError(
                f"options.{name}: unknown option (docs/api.md lists the supported ones)",
                {"field": f"options.{name}"},
            )
    return replace(params, **changes)


# Options that only shape sampling: they change no embedding.
SAMPLING_OPTIONS = frozenset(OFF_VALUES) | {
    "temperature", "top_p", "top_k", "frequency_penalty", "presence_penalty",
    "repeat_penalty", "repeat_last_n", "seed", "num_predict", "stop",
}  # fmt: skip


def check_embedding_options(options: dict[str, Any] | None) -> None:
    """Ollama's options on /api/embed (langchain-ollama always sends them, most null):
    sampling options change no embedding and load-time ones are the server's, so both are
    ignored; `num_ctx` must still be a positive integer; an unknown option is refused."""
    for name, value in (options or {}).items():
        if value is None or name in SAMPLING_OPTIONS:
            continue
        if name == "num_ctx" and _integer(name, value) < 1:
            raise ValidationError(
                "options.num_ctx: must be a positive integer", {"field": "options.num_ctx"}
            )
        if name not in IGNORED_OPTIONS:
            raise ValidationError(
                f"options.{name}: unknown option (docs/api.md lists the supported ones)",
                {"field": f"options.{name}"},
            )


def output_format(fmt: str | dict[str, Any] | None) -> OutputFormat | None:
    """Ollama's `format`: "json" (any JSON object) or a JSON schema."""
    if fmt is None or fmt == "":
        return None
    if fmt == "json":
        return OutputFormat(json_mode=True, field="format")
    if isinstance(fmt, dict):  # the same checks as json_schema, named as Ollama's field
        return OutputFormat(schema=fmt, where=SchemaField("format", "format"), field="format")
    raise ValidationError('format: "json" or a JSON schema object', {"field": "format"})
