"""One generation request in no dialect's words: what each dialect's protocol module turns
its body into (with that dialect's defaults), and what service/prepare.py settles."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from browser_llm.core.types import GenerationParams
from browser_llm.grammar.check import SchemaField
from browser_llm.service.tools.generic import HistoryTurn

__all__ = ["Call", "OutputFormat", "ToolRequest", "stop_strings"]


@dataclass(frozen=True)
class OutputFormat:
    """A constraint on the answer: any JSON object (`json_mode`) or a JSON schema, and the
    request field it came from, named in its errors."""

    json_mode: bool = False
    schema: dict[str, Any] | None = None
    where: SchemaField = field(default_factory=SchemaField)
    field: str = "json_schema"  # named when it cannot be combined with tools


@dataclass(frozen=True)
class ToolRequest:
    """Functions the model may call: (name, description, JSON Schema parameters)."""

    tools: tuple[tuple[str, str, dict[str, Any] | None], ...]
    choice: str | None = None  # "none" | "auto" | "required"; None: auto
    named: str | None = None  # a function the model must call
    parallel: bool | None = None
    has_choice: bool = True  # the dialect has a tool_choice field (Ollama has none)
    id_prefix: str = "call_"  # how the dialect's call ids begin (Anthropic: toolu_)


@dataclass(frozen=True)
class Call:
    """A prompt (plain text, or a conversation of turns) and how to answer it."""

    request_id: str
    params: GenerationParams = field(default_factory=GenerationParams)  # grammar: prepare's
    prompt: str | None = None
    raw: bool = False
    turns: tuple[HistoryTurn, ...] | None = None
    output: OutputFormat | None = None
    tools: ToolRequest | None = None
    model: str | None = None  # as the client named it; None: the loaded model
    engine: str | None = None  # "native" | "browser"; None: the server's default
    keep_alive_s: float | None = None  # how long its model stays loaded once idle
    stream: bool = False
    logprobs: int | None = None  # alternatives per token; None: none computed
    # Thinking models: False turns it off where the template can; True asks for it (a model
    # that does not think refuses); None: the model's default (service/thinking/plan.py).
    thinking: bool | None = None
    n: int = 1  # independent answers (choices) to the same prompt, generated together
    submitted_at: float = field(default_factory=time.perf_counter)


def stop_strings(value: str | Sequence[str] | None) -> tuple[str, ...]:
    """Every dialect's `stop`: one string, a list, or nothing."""
    if value is None:
        return ()
    return (value,) if isinstance(value, str) else tuple(value)
