"""A Responses API body (and the stored conversation it continues) -> a neutral call, with
OpenAI's defaults. Items travel as plain dicts: the ones just sent and the ones read back
from the response store are turned into turns the same way."""

from __future__ import annotations

import uuid
from dataclasses import replace
from typing import Any

from browser_llm.api.responses.protocol import (
    FunctionTool,
    MediaPart,
    ResponseCreate,
    TextFormat,
    ToolChoiceObject,
)
from browser_llm.core.durations import keep_alive_seconds
from browser_llm.core.errors import ValidationError
from browser_llm.core.types import GenerationParams
from browser_llm.grammar.json_schema import SchemaField
from browser_llm.service.calls import Call, OutputFormat, ToolRequest
from browser_llm.service.tools.generic import HistoryTurn

__all__ = ["input_items", "responses_call"]

_DEFAULT_MAX_TOKENS = 4096  # OpenAI's default is "until done": clamped to the context
_UNSUPPORTED_INCLUDE = ("message.output_text.logprobs",)  # would change the answer's shape


def _refuse(field: str, why: str) -> ValidationError:
    return ValidationError(f"{field}: {why}", {"field": field})


def _refuse_unsupported(body: ResponseCreate) -> None:
    if body.background:
        raise _refuse("background", "background responses are not supported (stream instead)")
    if body.conversation is not None:
        raise _refuse("conversation", "not supported; continue with previous_response_id")
    if body.prompt is not None:
        raise _refuse("prompt", "prompt templates are not supported; send input")
    if body.truncation == "auto":
        raise _refuse("truncation", "only 'disabled' is supported (a prompt too long is a 400)")
    if body.top_logprobs:
        raise _refuse("top_logprobs", "log-probabilities are not supported on /v1/responses")
    for value in body.include or ():
        if value in _UNSUPPORTED_INCLUDE:
            raise _refuse("include", f"{value} is not supported on /v1/responses")
    if body.moderation is not None:
        raise _refuse("moderation", "moderation is not available on a local server")


def _refuse_media(body: ResponseCreate) -> None:
    for i, item in enumerate(body.input):
        content = getattr(item, "content", None) or getattr(item, "output", None)
        for j, part in enumerate(content if isinstance(content, list) else ()):
            if isinstance(part, MediaPart):
                raise _refuse(
                    f"input.{i}.content.{j}",
                    f"{part.type} parts are not supported (the models here read text only)",
                )


def input_items(body: ResponseCreate) -> list[dict[str, Any]]:
    """The request's input as items, each with an id (input_items lists them)."""
    _refuse_media(body)
    return [
        _with_id(item.model_dump(mode="json", exclude_none=True, by_alias=True))
        for item in body.input
    ]


def _with_id(item: dict[str, Any]) -> dict[str, Any]:
    if item.get("type") == "message" and isinstance(item["content"], str):
        # Stored as OpenAI lists them: content parts, even for a plain string.
        kind = "output_text" if item["role"] == "assistant" else "input_text"
        item["content"] = [{"type": kind, "text": item["content"]}]
    if not item.get("id"):
        prefix = {
            "message": "msg",
            "function_call": "fc",
            "function_call_output": "fco",
            "reasoning": "rs",
        }
        item["id"] = f"{prefix.get(item['type'], 'item')}_{uuid.uuid4().hex}"
    return item


def _text(content: Any) -> str:
    if isinstance(content, str):
        return content
    return "".join(part.get("text") or part.get("refusal") or "" for part in content or ())


def _answered_call(output: dict[str, Any]) -> str:
    """The call a tool result answers; for a result no call asked for (Codex's harness
    context), the qualified name of the tool that made it."""
    if output.get("call_id"):
        return str(output["call_id"])
    namespace, name = output.get("namespace"), output.get("name")
    return f"{namespace}.{name}" if namespace else str(name)


def _reasoning_text(item: dict[str, Any]) -> str:
    """A reasoning item's text as the model wrote it (its reasoning_text content; a summary
    or encrypted_content is another model's, which no template here can render)."""
    parts = item.get("content") or ()
    return "".join(p.get("text") or "" for p in parts if p.get("type") == "reasoning_text")


def context_turns(instructions: str | None, items: list[dict[str, Any]]) -> list[HistoryTurn]:
    """Instructions first (as a system turn), then the items in order. An assistant's text
    and the function calls right after it are one assistant turn, as chat templates want;
    a reasoning item goes with the assistant turn after it (templates that render earlier
    reasoning read it there; the others leave it out)."""
    turns: list[HistoryTurn] = []
    if instructions:
        turns.append(HistoryTurn("system", instructions))
    reasoning = ""  # read, waiting for the assistant turn it belongs to
    for item in items:
        kind = item.get("type", "message")
        if kind == "reasoning":
            reasoning += _reasoning_text(item)
            continue
        if kind == "message":
            role = item["role"]
            mine = reasoning if role == "assistant" else ""
            turns.append(HistoryTurn(role, _text(item["content"]), reasoning=mine))
        elif kind == "function_call":
            call = (item["call_id"], item["name"], item["arguments"])
            last = turns[-1] if turns else None
            if last is not None and last.role == "assistant" and not reasoning:
                turns[-1] = replace(last, tool_calls=(*last.tool_calls, call))
            else:
                turns.append(HistoryTurn("assistant", "", (call,), reasoning=reasoning))
        elif kind == "function_call_output":
            turns.append(HistoryTurn("tool", _text(item["output"]), (), _answered_call(item)))
        reasoning = ""  # reasoning before anything but an assistant turn is no turn's
    return turns


def _tools(body: ResponseCreate) -> ToolRequest | None:
    functions = [t for t in body.tools or () if isinstance(t, FunctionTool)]
    choice = body.tool_choice
    named: str | None = None
    mode: str | None = None
    if isinstance(choice, ToolChoiceObject):
        if choice.type == "function":
            if not choice.name:
                raise _refuse("tool_choice", "a function tool_choice needs a name")
            named = choice.name
        elif choice.type == "allowed_tools":
            allowed = {t.get("name") for t in choice.tools or () if t.get("type") == "function"}
            functions = [t for t in functions if t.name in allowed]
            mode = choice.mode or "auto"
        else:
            raise _refuse(
                "tool_choice",
                f"{choice.type} tools cannot run on this server (only function tools can)",
            )
    else:
        mode = choice
    if not functions:
        if named is not None:
            raise _refuse("tool_choice", f"no function named '{named}' in tools")
        if mode == "required":
            raise _refuse("tool_choice", "'required' needs at least one function tool")
        return None
    parallel = body.parallel_tool_calls
    if body.max_tool_calls is not None and body.max_tool_calls <= 1:
        parallel = False
    if body.max_tool_calls == 0:
        mode, named = "none", None
    return ToolRequest(
        tools=tuple((t.name, t.description or "", t.parameters) for t in functions),
        choice=mode,
        named=named,
        parallel=parallel,
    )


def _output(fmt: TextFormat | None) -> OutputFormat | None:
    if fmt is None or fmt.type == "text":
        return None
    where = SchemaField("text.format.schema", "text.format")
    if fmt.type == "json_object":
        return OutputFormat(json_mode=True, where=where, field="text.format")
    if fmt.schema_ is None:
        raise _refuse("text.format", "a json_schema format needs a schema")
    return OutputFormat(schema=fmt.schema_, where=where, field="text.format")


def responses_call(
    body: ResponseCreate, context: list[dict[str, Any]], request_id: str, arrived: float
) -> Call:
    """`context`: every item of the conversation (a continued one's first), input last."""
    _refuse_unsupported(body)
    turns = context_turns(body.instructions, context)
    if not any(t.role != "system" for t in turns):
        raise _refuse("input", "there is nothing to answer (send a message)")
    params = GenerationParams(
        max_tokens=body.max_output_tokens or _DEFAULT_MAX_TOKENS,
        temperature=1.0 if body.temperature is None else float(body.temperature),
        top_p=1.0 if body.top_p is None else float(body.top_p),
        top_k=40,
    )
    return Call(
        request_id=request_id,
        params=params,
        turns=tuple(turns),
        output=_output(body.text.format if body.text else None),
        tools=_tools(body),
        model=body.model or None,
        engine=body.engine,
        keep_alive_s=keep_alive_seconds(body.keep_alive),
        stream=body.stream,
        submitted_at=arrived,
        thinking=False if (body.reasoning or {}).get("effort") == "none" else None,
    )
