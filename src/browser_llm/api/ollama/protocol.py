"""Request bodies of Ollama's API (/api/<name>), with every field Ollama defines.

Each field is honoured, refused when set to something that would change the answer, or
ignored because it cannot (docs/api.md lists which). Unknown fields are refused, so a
typo or a newer Ollama feature is never silently dropped. `options` is a plain object
checked key by key in api/ollama/options.py, to name the option in the error.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictFloat, StrictInt, StrictStr

__all__ = [
    "OllamaChatRequest",
    "OllamaDeleteRequest",
    "OllamaEmbedRequest",
    "OllamaGenerateRequest",
    "OllamaMessage",
    "OllamaModelRequest",
    "OllamaPullRequest",
]

Text = Annotated[StrictStr, Field(max_length=400_000)]
# A duration ("5m", "1h30m", "-1") or a number of seconds, as Ollama's keep_alive.
KeepAlive = StrictStr | StrictInt | StrictFloat
# false / true / "low" / "medium" / "high" / "max"
Think = StrictBool | StrictStr


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class OllamaModelRequest(_Strict):
    """POST /api/show. `name` is the older spelling of `model`."""

    model: StrictStr | None = None
    name: StrictStr | None = None
    verbose: StrictBool | None = None
    system: StrictStr | None = None  # accepted by Ollama's show; has no effect there
    template: StrictStr | None = None  # likewise


class OllamaDeleteRequest(_Strict):
    model: StrictStr | None = None
    name: StrictStr | None = None


class OllamaPullRequest(_Strict):
    model: StrictStr | None = None
    name: StrictStr | None = None
    insecure: StrictBool | None = None
    stream: StrictBool | None = None
    username: StrictStr | None = None  # Ollama's registry login: not used here
    password: StrictStr | None = None


class _Generation(_Strict):
    model: StrictStr = ""
    stream: StrictBool | None = None  # Ollama streams unless told not to
    format: StrictStr | dict[str, Any] | None = None
    options: dict[str, Any] | None = None
    keep_alive: KeepAlive | None = None
    think: Think | None = None
    truncate: StrictBool | None = None
    shift: StrictBool | None = None
    logprobs: StrictBool | None = None
    top_logprobs: StrictInt | None = None
    debug_render_only: StrictBool | None = Field(None, alias="_debug_render_only")


class OllamaGenerateRequest(_Generation):
    prompt: Text | None = None
    suffix: Text | None = None
    system: Text | None = None
    template: StrictStr | None = None
    context: list[StrictInt] | None = None
    raw: StrictBool | None = None
    images: list[StrictStr] | None = None
    width: StrictInt | None = None
    height: StrictInt | None = None
    steps: StrictInt | None = None


class OllamaMessage(_Strict):
    role: Literal["system", "user", "assistant", "tool"]
    content: Text = ""
    thinking: Text | None = None
    images: list[StrictStr] | None = None
    tool_calls: list[dict[str, Any]] | None = None
    tool_name: StrictStr | None = None
    tool_call_id: StrictStr | None = None


class OllamaChatRequest(_Generation):
    messages: Annotated[list[OllamaMessage], Field(max_length=512)] | None = None
    tools: list[dict[str, Any]] | None = None


class OllamaEmbedRequest(_Strict):
    model: StrictStr = ""
    input: StrictStr | list[StrictStr] | None = None
    prompt: StrictStr | None = None  # /api/embeddings (the older route)
    truncate: StrictBool | None = None
    options: dict[str, Any] | None = None
    keep_alive: KeepAlive | None = None
    dimensions: StrictInt | None = None
