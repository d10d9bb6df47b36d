"""Anthropic's Messages bodies -> neutral calls, with Anthropic's defaults."""

from __future__ import annotations

import json
from dataclasses import replace

from browser_llm.api.anthropic.protocol import (
    Conversation,
    MessageIn,
    MessagesRequest,
    OtherBlock,
    TextBlock,
    ThinkingBlock,
    ToolResultBlock,
    ToolUseBlock,
)
from browser_llm.core.errors import ValidationError
from browser_llm.core.types import GenerationParams
from browser_llm.grammar.json_schema import SchemaField
from browser_llm.service.calls import Call, OutputFormat, ToolRequest
from browser_llm.service.tools.generic import HistoryTurn

__all__ = ["count_call", "messages_call"]

# Anthropic's sampling defaults: temperature 1, no nucleus cut; top_k as the other dialects.
_TEMPERATURE = 1.0
_TOP_K = 40
_OUTPUT_FORMAT = SchemaField("output_config.format: the schema", "output_config.format")
_TOOL_ID = "toolu_"  # Anthropic's tool_use ids, as clients that check the form expect
# tool_choice type -> the neutral mode ("tool" names one function, see _tools).
_CHOICES = {"auto": "auto", "any": "required", "none": "none"}


def _refuse(field: str, why: str) -> ValidationError:
    return ValidationError(f"{field}: {why}", {"field": field})


def _text(blocks: str | list[TextBlock]) -> str:
    if isinstance(blocks, str):
        return blocks
    return "\n\n".join(b.text for b in blocks)


def _result_text(block: ToolResultBlock, field: str) -> str:
    if isinstance(block.content, str):
        text = block.content
    else:
        parts = []
        for i, inner in enumerate(block.content):
            if not isinstance(inner, TextBlock):
                raise _unsupported(inner.type, f"{field}.content.{i}")
            parts.append(inner.text)
        text = "\n".join(parts)
    return f"Error: {text}" if block.is_error else text


def _unsupported(kind: str, field: str) -> ValidationError:
    if kind in ("image", "document"):
        return _refuse(field, f"{kind} blocks are not supported: the models here read text only")
    return _refuse(field, f"'{kind}' blocks are not supported by this server")


def _message_turns(message: MessageIn, index: int) -> list[HistoryTurn]:
    """One Anthropic message -> turns: tool results become tool turns (before the user's
    own text, as Anthropic orders them), tool_use blocks the assistant's calls."""
    field = f"messages.{index}.content"
    if isinstance(message.content, str):
        return [HistoryTurn(message.role, message.content)]
    texts: list[str] = []
    thoughts: list[str] = []
    calls: list[tuple[str, str, str]] = []
    results: list[HistoryTurn] = []
    for i, block in enumerate(message.content):
        where = f"{field}.{i}"
        if isinstance(block, TextBlock):
            texts.append(block.text)
        elif isinstance(block, ThinkingBlock):
            if message.role == "assistant":  # the template decides whether it is rendered
                thoughts.append(block.thinking)
        elif isinstance(block, ToolUseBlock):
            if message.role != "assistant":
                raise _refuse(where, "tool_use blocks belong to assistant messages")
            calls.append((block.id, block.name, json.dumps(block.input, ensure_ascii=False)))
        elif isinstance(block, ToolResultBlock):
            if message.role != "user":
                raise _refuse(where, "tool_result blocks belong to user messages")
            results.append(HistoryTurn("tool", _result_text(block, where), (), block.tool_use_id))
        else:
            assert isinstance(block, OtherBlock)
            raise _unsupported(block.type, where)
    text = "".join(texts) if message.role == "assistant" else "\n\n".join(texts)
    turns = results
    if text or calls or not results:
        turns.append(HistoryTurn(message.role, text, tuple(calls), reasoning="".join(thoughts)))
    return turns


def _turns(body: Conversation) -> tuple[HistoryTurn, ...]:
    # `system` and every system message (Claude Code ends with one) make one leading system
    # turn: many chat templates accept a system turn only first.
    system = [_text(body.system)] if body.system else []
    turns: list[HistoryTurn] = []
    for index, message in enumerate(body.messages):
        if message.role == "system":
            system.append(_system_text(message, index))
        else:
            turns += _message_turns(message, index)
    if body.messages[-1].role == "assistant":
        # Anthropic continues a final assistant message (prefill); chat templates here
        # open a new turn instead, so the answer would not continue it: refused.
        raise _refuse("messages", "a final assistant message (prefill) is not supported")
    if not turns:
        raise _refuse("messages", "at least one user message is needed")
    head = [HistoryTurn("system", "\n\n".join(system))] if any(system) else []
    return (*head, *turns)


def _system_text(message: MessageIn, index: int) -> str:
    if isinstance(message.content, str):
        return message.content
    texts = []
    for i, block in enumerate(message.content):
        if not isinstance(block, TextBlock):
            raise _refuse(f"messages.{index}.content.{i}", "system messages hold text blocks")
        texts.append(block.text)
    return "\n\n".join(texts)


def _tools(body: Conversation) -> ToolRequest | None:
    choice = body.tool_choice
    if not body.tools:
        if choice is not None and choice.type != "none":
            raise _refuse("tool_choice", "tool_choice needs tools")
        return None
    for i, tool in enumerate(body.tools):
        if tool.type not in (None, "custom"):
            raise _refuse(f"tools.{i}", f"server tool '{tool.type}' cannot run on this server")
        if tool.input_schema is None:
            raise _refuse(f"tools.{i}.input_schema", "Field required")
    defined = tuple((t.name, t.description or "", t.input_schema) for t in body.tools)
    if choice is None:
        return ToolRequest(defined, id_prefix=_TOOL_ID)
    if choice.type == "tool" and not choice.name:
        raise _refuse("tool_choice.name", "a tool_choice of type 'tool' names the tool")
    return ToolRequest(
        defined,
        choice=_CHOICES.get(choice.type),
        named=choice.name if choice.type == "tool" else None,
        parallel=None
        if choice.disable_parallel_tool_use is None
        else not choice.disable_parallel_tool_use,
        id_prefix=_TOOL_ID,
    )


def _output(body: Conversation) -> OutputFormat | None:
    fmt = body.output_config.format if body.output_config is not None else None
    if fmt is None:
        return None
    return OutputFormat(schema=fmt.schema_, where=_OUTPUT_FORMAT, field="output_config.format")


def _refuse_unsupported(body: Conversation) -> None:
    if body.mcp_servers:
        raise _refuse("mcp_servers", "this server connects to no MCP servers")
    if body.container is not None:
        raise _refuse("container", "this server runs no containers")


def _conversation(body: Conversation, request_id: str, arrived: float) -> Call:
    _refuse_unsupported(body)
    return Call(
        request_id=request_id,
        turns=_turns(body),
        tools=_tools(body),
        output=_output(body),
        model=body.model,
        submitted_at=arrived,
        # "disabled": off where the template can turn it off; enabled/adaptive: the default.
        thinking=False if body.thinking is not None and body.thinking.type == "disabled" else None,
    )


def messages_call(body: MessagesRequest, request_id: str, arrived: float) -> Call:
    call = _conversation(body, request_id, arrived)
    params = GenerationParams(
        # Above what the context leaves (Claude Code asks 32,000): clamped by the engine.
        max_tokens=body.max_tokens,
        temperature=_TEMPERATURE if body.temperature is None else float(body.temperature),
        top_p=1.0 if body.top_p is None else float(body.top_p),
        top_k=_TOP_K if body.top_k is None else body.top_k,
        stop=tuple(body.stop_sequences or ()),
    )
    return replace(call, params=params, stream=body.stream)


def count_call(body: Conversation, request_id: str, arrived: float) -> Call:
    """The same conversation, tools and format: what count_tokens counts."""
    return _conversation(body, request_id, arrived)
