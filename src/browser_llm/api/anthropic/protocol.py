"""Request bodies of Anthropic's Messages API (/v1/messages), as the `anthropic` SDK 2.17
and Claude Code send them.

Every top-level field the SDK's `messages.create` sends is declared: honoured, refused
with a 400 naming it (calls.py), or, where it changes no answer here (cache_control,
metadata, effort: this server has no prompt cache billing and no effort levels), accepted
and ignored. `thinking` of type "disabled" turns a thinking model's thinking off where its
template can (service/thinking/plan.py); the other types leave the model's default. Unknown
top-level fields are refused, as Anthropic's API does. Content blocks keep their own extra
fields (citations, caller, ...) unread.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    StrictBool,
    StrictInt,
    StrictStr,
    Tag,
)

__all__ = [
    "Block",
    "Conversation",
    "CountTokensRequest",
    "MessageIn",
    "MessagesRequest",
    "OtherBlock",
    "TextBlock",
    "ThinkingBlock",
    "ToolChoice",
    "ToolDef",
    "ToolResultBlock",
    "ToolUseBlock",
]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class _Open(BaseModel):
    """A block whose optional extras (cache_control, citations, caller) change nothing here."""

    model_config = ConfigDict(extra="allow")


class TextBlock(_Open):
    type: Literal["text"]
    text: StrictStr


class ToolUseBlock(_Open):
    type: Literal["tool_use"]
    id: Annotated[StrictStr, Field(min_length=1, max_length=256)]
    name: Annotated[StrictStr, Field(min_length=1, max_length=128)]
    input: dict[str, Any]


class ToolResultBlock(_Open):
    type: Literal["tool_result"]
    tool_use_id: Annotated[StrictStr, Field(min_length=1, max_length=256)]
    content: list[Block] | StrictStr = ""
    is_error: StrictBool = False


class ThinkingBlock(_Open):
    """An earlier answer's reasoning, sent back by agents: its text goes with the assistant
    turn, for chat templates that render earlier reasoning (calls.py). The signature is
    not checked (render.py: it is a digest, nothing here trusts it); a redacted block
    carries no text."""

    type: Literal["thinking", "redacted_thinking"]
    thinking: StrictStr = ""


class OtherBlock(_Open):
    """Any other block (image, document, search_result, ...): refused by name in calls.py."""

    type: StrictStr


def _block_tag(value: Any) -> str:
    kind = value.get("type") if isinstance(value, dict) else getattr(value, "type", None)
    if kind in ("text", "tool_use", "tool_result"):
        return str(kind)
    return "thinking" if kind in ("thinking", "redacted_thinking") else "other"


Block = Annotated[
    Annotated[TextBlock, Tag("text")]
    | Annotated[ToolUseBlock, Tag("tool_use")]
    | Annotated[ToolResultBlock, Tag("tool_result")]
    | Annotated[ThinkingBlock, Tag("thinking")]
    | Annotated[OtherBlock, Tag("other")],
    Discriminator(_block_tag),
]


class MessageIn(_Strict):
    # "system" turns: the SDK 2.17's SystemMessageParam.
    role: Literal["user", "assistant", "system"]
    # The list first: a bad block's error then names the block, not "a valid string".
    content: Annotated[list[Block], Field(max_length=4096)] | StrictStr


class ToolDef(_Open):
    """A client tool (type absent or "custom"); server tools are refused in calls.py."""

    name: Annotated[StrictStr, Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9_-]+$")]
    description: Annotated[StrictStr, Field(max_length=100_000)] | None = None
    input_schema: dict[str, Any] | None = None
    type: StrictStr | None = None


class ToolChoice(_Strict):
    type: Literal["auto", "any", "tool", "none"]
    name: StrictStr | None = None
    disable_parallel_tool_use: StrictBool | None = None


class OutputFormatIn(_Strict):
    type: Literal["json_schema"]
    schema_: dict[str, Any] = Field(alias="schema")


class OutputConfig(_Strict):
    effort: StrictStr | None = None  # accepted, ignored: no effort levels here
    format: OutputFormatIn | None = None


class _Thinking(_Open):
    type: Literal["enabled", "disabled", "adaptive", "between_tools"]


class Conversation(_Strict):
    """What count_tokens and create share."""

    model: Annotated[StrictStr, Field(min_length=1, max_length=200)]
    messages: Annotated[list[MessageIn], Field(min_length=1, max_length=4096)]
    system: Annotated[list[TextBlock], Field(max_length=256)] | StrictStr | None = None
    tools: Annotated[list[ToolDef], Field(max_length=256)] | None = None
    tool_choice: ToolChoice | None = None
    output_config: OutputConfig | None = None
    thinking: _Thinking | None = None  # "disabled": off; others: the model's default
    # Accepted and ignored: they change no answer here.
    cache_control: dict[str, Any] | None = None
    context_management: dict[str, Any] | None = None
    speed: StrictStr | None = None
    user_profile_id: StrictStr | None = None
    workspace_id: StrictStr | None = None
    # Refused when set (calls.py): nothing here runs MCP servers or containers.
    mcp_servers: list[Any] | None = None
    container: Any = None


class MessagesRequest(Conversation):
    # 0: Anthropic's cache pre-warming; here the prompt is counted and nothing generated.
    max_tokens: Annotated[StrictInt, Field(ge=0, le=1_000_000)]
    stop_sequences: (
        Annotated[
            list[Annotated[StrictStr, Field(min_length=1, max_length=256)]], Field(max_length=16)
        ]
        | None
    ) = None
    stream: StrictBool = False
    # Older SDKs and raw HTTP; Anthropic's ranges.
    temperature: Annotated[float, Field(ge=0, le=1)] | None = None
    top_p: Annotated[float, Field(ge=0, le=1)] | None = None
    top_k: Annotated[StrictInt, Field(ge=0, le=1000)] | None = None
    metadata: dict[str, Any] | None = None
    service_tier: StrictStr | None = None
    inference_geo: StrictStr | None = None
    diagnostics: dict[str, Any] | None = None


class CountTokensRequest(Conversation):
    pass


ToolResultBlock.model_rebuild()  # its content may hold blocks, defined after it
