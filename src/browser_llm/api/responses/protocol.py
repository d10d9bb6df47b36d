"""Request bodies of OpenAI's Responses API (POST /v1/responses), as the openai SDK sends them.

Every top-level field the SDK's `responses.create` can send is declared: honoured, refused
with a 400 naming it (api/responses/calls.py), or accepted and ignored where it changes no
answer here (docs/api.md has the table). Unknown top-level fields are refused. Tools of
types this server cannot run (web_search, file_search, mcp, namespace, ...) are accepted and
left out of the prompt: Codex sends them on every request.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Discriminator,
    Field,
    StrictBool,
    StrictInt,
    StrictStr,
    Tag,
    model_validator,
)

__all__ = [
    "ContentPart",
    "FunctionCallItem",
    "FunctionCallOutputItem",
    "FunctionTool",
    "InputItem",
    "MessageItem",
    "OtherTool",
    "ReasoningItem",
    "ResponseCreate",
    "TextConfig",
    "TextFormat",
    "ToolChoiceObject",
]

CallId = Annotated[StrictStr, Field(min_length=1, max_length=128)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class _Lenient(BaseModel):
    """Items and parts: fields the server does not read (status, annotations...) pass."""

    model_config = ConfigDict(extra="ignore")


class TextPart(_Lenient):
    type: Literal["input_text", "output_text"]
    text: StrictStr


class RefusalPart(_Lenient):
    type: Literal["refusal"]
    refusal: StrictStr


class MediaPart(_Lenient):
    """Refused in calls.py with a 400 naming it: this server's models read text only."""

    type: Literal["input_image", "input_file", "input_audio"]


ContentPart = Annotated[TextPart | RefusalPart | MediaPart, Field(discriminator="type")]
Content = Annotated[list[ContentPart], Field(max_length=256)] | StrictStr


class MessageItem(_Lenient):
    type: Literal["message"] = "message"
    role: Literal["user", "assistant", "system", "developer"]
    content: Content
    id: StrictStr | None = None


class FunctionCallItem(_Lenient):
    type: Literal["function_call"]
    call_id: CallId
    name: Annotated[StrictStr, Field(min_length=1, max_length=128)]
    arguments: Annotated[StrictStr, Field(max_length=100_000)]
    id: StrictStr | None = None


class FunctionCallOutputItem(_Lenient):
    """A tool's result. Codex CLI also sends results no call asked for (its harness's own
    context, e.g. the thread's goal): no call_id, a `name` and a `namespace` instead."""

    type: Literal["function_call_output"]
    call_id: CallId | None = None
    name: Annotated[StrictStr, Field(min_length=1, max_length=128)] | None = None
    namespace: Annotated[StrictStr, Field(max_length=128)] | None = None
    output: Content
    id: StrictStr | None = None

    @model_validator(mode="after")
    def _names_its_call(self) -> FunctionCallOutputItem:
        if self.call_id is None and self.name is None:
            raise ValueError("a function_call_output needs call_id (or a name)")
        return self


class ReasoningText(_Lenient):
    type: Literal["reasoning_text"]
    text: StrictStr


class ReasoningItem(_Lenient):
    """An earlier turn's reasoning, sent back by stateless clients: its reasoning_text goes
    with the assistant turn after it, for chat templates that render earlier reasoning
    (calls.py). The summary and encrypted_content are kept for input_items, never read."""

    type: Literal["reasoning"]
    id: StrictStr | None = None
    content: Annotated[list[ReasoningText], Field(max_length=256)] | None = None
    summary: list[dict[str, Any]] = []
    encrypted_content: StrictStr | None = None


def _item_tag(value: Any) -> str:
    kind = value.get("type", "message") if isinstance(value, dict) else getattr(value, "type", "")
    return kind if isinstance(kind, str) else ""


InputItem = Annotated[
    Annotated[MessageItem, Tag("message")]
    | Annotated[FunctionCallItem, Tag("function_call")]
    | Annotated[FunctionCallOutputItem, Tag("function_call_output")]
    | Annotated[ReasoningItem, Tag("reasoning")],
    Discriminator(_item_tag),
]


def _string_input(value: Any) -> Any:
    if isinstance(value, str):
        return [{"type": "message", "role": "user", "content": value}] if value else []
    return value


def _string_or_items(schema: dict[str, Any]) -> None:
    """The published schema says what is accepted: a string, or the list of items."""
    items = dict(schema)
    schema.clear()
    schema["anyOf"] = [{"type": "string"}, items]


class FunctionTool(_Lenient):
    type: Literal["function"]
    name: Annotated[StrictStr, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")]
    description: Annotated[StrictStr, Field(max_length=4096)] | None = None
    parameters: dict[str, Any] | None = None
    strict: StrictBool | None = None


class OtherTool(BaseModel):
    """A tool this server cannot run (web_search, file_search, mcp, namespace, custom...):
    kept as sent, left out of the prompt."""

    model_config = ConfigDict(extra="allow")
    type: StrictStr


def _tool_tag(value: Any) -> str:
    kind = value.get("type") if isinstance(value, dict) else getattr(value, "type", None)
    return "function" if kind == "function" else "other"


Tool = Annotated[
    Annotated[FunctionTool, Tag("function")] | Annotated[OtherTool, Tag("other")],
    Discriminator(_tool_tag),
]


class ToolChoiceObject(BaseModel):
    """{"type": "function", "name": ...}, {"type": "allowed_tools", "mode", "tools"}, or a
    hosted tool's type (refused by name: such tools cannot run here)."""

    model_config = ConfigDict(extra="allow")
    type: StrictStr
    name: StrictStr | None = None
    mode: Literal["auto", "required"] | None = None
    tools: list[dict[str, Any]] | None = None


class TextFormat(_Strict):
    type: Literal["text", "json_object", "json_schema"]
    name: Annotated[StrictStr, Field(max_length=64)] | None = None
    schema_: dict[str, Any] | None = Field(None, alias="schema")
    strict: StrictBool | None = None
    description: StrictStr | None = None


class TextConfig(_Strict):
    format: TextFormat | None = None
    verbosity: Literal["low", "medium", "high"] | None = None  # a hint: ignored


class StreamOptions(_Strict):
    include_obfuscation: StrictBool | None = None  # ignored: nothing to obfuscate locally


class ResponseCreate(_Strict):
    model: StrictStr = Field(
        "", max_length=200, description="Model id or alias; empty: the loaded model"
    )
    # A string is one user message (errors then name input.N..., not a union's branches).
    input: Annotated[list[InputItem], BeforeValidator(_string_input), Field(max_length=2048)] = (
        Field(default_factory=list, json_schema_extra=_string_or_items)
    )
    instructions: StrictStr | None = None
    previous_response_id: Annotated[StrictStr, Field(max_length=200)] | None = None
    store: StrictBool | None = None  # None: true, as OpenAI's default
    max_output_tokens: Annotated[StrictInt, Field(ge=1, le=1_000_000)] | None = None
    temperature: Annotated[float, Field(ge=0, le=2)] | None = None
    top_p: Annotated[float, Field(ge=0, le=1)] | None = None
    tools: Annotated[list[Tool], Field(max_length=256)] | None = None
    tool_choice: Literal["none", "auto", "required"] | ToolChoiceObject | None = None
    parallel_tool_calls: StrictBool | None = None
    max_tool_calls: Annotated[StrictInt, Field(ge=0)] | None = None
    text: TextConfig | None = None
    stream: StrictBool = False
    stream_options: StreamOptions | None = None
    metadata: dict[str, StrictStr] | None = None
    engine: Literal["native", "browser"] | None = Field(
        None, description="Extension (OpenAI SDKs: extra_body): run on this engine"
    )
    keep_alive: StrictStr | StrictInt | None = Field(
        None, description="Extension (OpenAI SDKs: extra_body): how long the model stays loaded"
    )
    # Refused where they ask for something this server cannot do (calls.py).
    background: StrictBool | None = None
    conversation: StrictStr | dict[str, Any] | None = None
    prompt: dict[str, Any] | None = None
    truncation: Literal["auto", "disabled"] | None = None
    top_logprobs: Annotated[StrictInt, Field(ge=0, le=20)] | None = None
    include: list[StrictStr] | None = None
    moderation: dict[str, Any] | None = None
    # reasoning: {"effort": "none"} turns a thinking model's thinking off where its template
    # can (calls.py); the rest of it (summary) changes nothing here. Accepted, ignored: the
    # fields below change no answer here.
    reasoning: dict[str, Any] | None = None
    user: StrictStr | None = None
    safety_identifier: StrictStr | None = None
    service_tier: StrictStr | None = None
    prompt_cache_key: StrictStr | None = None
    prompt_cache_retention: StrictStr | None = None
    prompt_cache_options: dict[str, Any] | None = None
    context_management: list[dict[str, Any]] | None = None
    access_programs: dict[str, Any] | None = None
    image: dict[str, Any] | None = None
    client_metadata: dict[str, Any] | None = None  # Codex CLI: its session and turn ids
