"""Tool calling on Ollama's /api/chat, in the server's generic format (service/tools/generic.py):
Ollama's `tools` -> a plan, its tool history (calls with object arguments, results named
by `tool_name`) -> the conversation, and the answer -> Ollama's `message.tool_calls`.

Ollama has no tool_choice: the model decides ("auto"), and may call several functions.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

from browser_llm.api.error_shapes import ollama_error_of
from browser_llm.api.ollama.generation import final_fields, text_line
from browser_llm.api.ollama.protocol import OllamaChatRequest
from browser_llm.api.openai.tools import tool_grammar
from browser_llm.core.errors import BrowserLLMError, ValidationError
from browser_llm.core.types import ChatMessage, Completion
from browser_llm.service.generation import GenerationStream
from browser_llm.service.tools.format import answer_text, plan_conversation, plan_outcome
from browser_llm.service.tools.generic import (
    HistoryTurn,
    ToolFormat,
    ToolPlan,
    plan_tools,
    render_conversation,
)

__all__ = ["tool_conversation", "tool_grammar", "tool_lines", "tool_message", "tool_plan"]


def _bad(field: str, why: str) -> ValidationError:
    return ValidationError(f"{field}: {why}", {"field": field})


def tool_plan(body: OllamaChatRequest, fmt: ToolFormat = "generic") -> ToolPlan | None:
    if not body.tools:
        return None
    if body.format not in (None, ""):
        raise _bad("format", "cannot be combined with tools (tool calls are JSON already)")
    tools = []
    for i, tool in enumerate(body.tools):
        fn = tool.get("function")
        if tool.get("type", "function") != "function" or not isinstance(fn, dict):
            raise _bad(f"tools.{i}", 'each tool is {"type": "function", "function": {...}}')
        name, params = fn.get("name"), fn.get("parameters")
        if not isinstance(name, str) or not name or not isinstance(params, dict | None):
            raise _bad(f"tools.{i}.function", "needs a name and JSON Schema parameters")
        description = fn.get("description")
        tools.append((name, description if isinstance(description, str) else "", params))
    return plan_tools(tools, None, None, True, fmt)


def _calls(i: int, raw: list[dict[str, Any]]) -> tuple[tuple[str, str, str], ...]:
    calls = []
    for call in raw:
        fn = call.get("function")
        name = fn.get("name") if isinstance(fn, dict) else None
        args = fn.get("arguments", {}) if isinstance(fn, dict) else None
        if not isinstance(name, str) or not isinstance(args, dict | str):
            raise _bad(f"messages.{i}.tool_calls", "each is {function: {name, arguments}}")
        text = args if isinstance(args, str) else json.dumps(args, ensure_ascii=False)
        # Ollama names results by function, not by id: the name serves as the id.
        calls.append((str(call.get("id") or name), name, text))
    return tuple(calls)


def tool_conversation(body: OllamaChatRequest, plan: ToolPlan | None) -> tuple[ChatMessage, ...]:
    turns = []
    for i, m in enumerate(body.messages or []):
        if m.images:
            raise _bad(f"messages.{i}.images", "this server's models read text only")
        calls = _calls(i, m.tool_calls or []) if m.role == "assistant" else ()
        if m.tool_calls and m.role != "assistant":
            raise _bad(f"messages.{i}.tool_calls", "only assistant messages carry tool calls")
        call_id = m.tool_call_id or m.tool_name if m.role == "tool" else None
        turns.append(HistoryTurn(m.role, m.content, calls, call_id))
    if plan is None:
        return tuple(render_conversation(turns, None))
    return tuple(plan_conversation(turns, plan))


def _tool_calls(plan: ToolPlan, completion: Completion) -> tuple[str, list[dict[str, Any]]]:
    outcome = plan_outcome(plan, completion.text)
    if completion.closed_early and outcome.calls:
        outcome.calls.pop()  # closed with filler values by the engine: not the model's call
    calls = [
        {"function": {"name": c.name, "arguments": json.loads(c.arguments)}} for c in outcome.calls
    ]
    return outcome.content or "", calls


def tool_message(plan: ToolPlan, completion: Completion) -> dict[str, Any]:
    content, calls = _tool_calls(plan, completion)
    message: dict[str, Any] = {"role": "assistant", "content": content}
    if calls:
        message["tool_calls"] = calls
    return message


async def tool_lines(
    stream: GenerationStream, plan: ToolPlan, name: str, load_s: float
) -> AsyncIterator[dict[str, Any]]:
    """A plain answer streams as it arrives; calls come in one line once they parse."""
    answer = answer_text(plan)
    try:
        async for piece in stream:
            delta = answer.feed(piece)
            if delta:
                yield text_line(name, delta, True)
    except BrowserLLMError as exc:
        yield ollama_error_of(exc)
        return
    completion = stream.completion
    assert completion is not None
    content, calls = _tool_calls(plan, completion)
    rest = answer.rest(content)
    if rest or calls:
        line = text_line(name, rest, True)
        if calls:
            line["message"]["tool_calls"] = calls
        yield line
    yield {**text_line(name, "", True), **final_fields(completion, load_s)}
