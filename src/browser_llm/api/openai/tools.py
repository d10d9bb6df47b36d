"""Tool calling on /v1/chat/completions: the request's tools -> a plan and a prompt, and
the model's answer -> OpenAI's `tool_calls` (whole, or as streamed `delta.tool_calls`).
The format itself lives in service/tools/generic.py."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from typing import Any

from browser_llm.api.error_shapes import openai_error_of
from browser_llm.api.openai.protocol import ChatCompletionRequest, ToolChoice
from browser_llm.core.errors import BrowserLLMError, ValidationError
from browser_llm.core.types import ChatMessage, Completion
from browser_llm.service.generation import GenerationStream
from browser_llm.service.tools.format import (
    answer_text,
    plan_conversation,
    plan_grammar,
    plan_outcome,
)
from browser_llm.service.tools.generic import (
    HistoryTurn,
    ToolFormat,
    ToolOutcome,
    ToolPlan,
    plan_tools,
    render_conversation,
)

__all__ = ["conversation", "stream_tool_answer", "tool_grammar", "tool_message", "tool_plan"]

logger = logging.getLogger(__name__)

_ARGUMENT_FRAGMENT = 48  # characters of arguments per streamed delta


def tool_plan(body: ChatCompletionRequest, fmt: ToolFormat = "generic") -> ToolPlan | None:
    if not body.tools:
        return None
    wanted = body.response_format
    if wanted is not None and wanted.type != "text" and body.tool_choice != "none":
        raise ValidationError(
            "response_format: cannot be combined with tools (the tool-call format is "
            "JSON already); send tool_choice 'none' to use it",
            {"field": "response_format"},
        )
    choice = body.tool_choice
    named = choice.function.name if isinstance(choice, ToolChoice) else None
    mode = None if isinstance(choice, ToolChoice) else choice
    tools = [
        (t.function.name, t.function.description or "", t.function.parameters) for t in body.tools
    ]
    return plan_tools(tools, mode, named, body.parallel_tool_calls, fmt)


def tool_grammar(plan: ToolPlan) -> str | None:
    """The grammar of the tool-call format for these functions; 400 naming `tools` for a
    function schema the grammar cannot enforce."""
    try:
        return plan_grammar(plan)
    except ValidationError as exc:
        message = exc.message.replace("json_schema", "a function's parameters")
        details = {**(exc.details or {}), "field": "tools"}
        raise ValidationError(f"tools: {message}", details) from exc


def conversation(body: ChatCompletionRequest, plan: ToolPlan | None) -> tuple[ChatMessage, ...]:
    turns = []
    for m in body.messages:
        if m.role == "tool" and m.tool_call_id is None:
            raise ValidationError(
                "messages: a tool message needs tool_call_id", {"field": "messages"}
            )
        calls = tuple((c.id, c.function.name, c.function.arguments) for c in m.tool_calls or ())
        turns.append(HistoryTurn(m.role, m.text(), calls, m.tool_call_id))
    if plan is None:
        return tuple(render_conversation(turns, None))
    return tuple(plan_conversation(turns, plan))


def _finish(outcome: ToolOutcome, completion: Completion) -> str:
    return "tool_calls" if outcome.calls else completion.finish_reason


def _outcome(plan: ToolPlan, completion: Completion, request_id: str) -> ToolOutcome:
    outcome = plan_outcome(plan, completion.text)
    if completion.closed_early and outcome.calls:
        # max_tokens ran out inside the last call and the engine closed its JSON with
        # filler values: that call is not the model's; the complete ones before it are.
        outcome.calls.pop()
    if outcome.errors:  # the grammar should make this impossible: worth a log line
        logger.warning("request %s: tool call arguments off schema: %s", request_id, outcome.errors)
    return outcome


def tool_message(
    plan: ToolPlan, completion: Completion, request_id: str
) -> tuple[dict[str, Any], str]:
    """The non-streamed choice's message, and its finish_reason."""
    outcome = _outcome(plan, completion, request_id)
    message: dict[str, Any] = {"role": "assistant", "content": outcome.content}
    if outcome.calls:
        message["tool_calls"] = [
            {"id": c.id, "type": "function", "function": {"name": c.name, "arguments": c.arguments}}
            for c in outcome.calls
        ]
    return message, _finish(outcome, completion)


async def stream_tool_answer(
    stream: GenerationStream,
    plan: ToolPlan,
    chunk: Callable[[dict[str, Any], str | None], dict[str, Any]],
    tail: Callable[[Completion], list[dict[str, Any]]],
    request_id: str,
) -> AsyncIterator[dict[str, Any] | str]:
    """Chunks (and "[DONE]"): a plain answer streams as content as it arrives; calls
    stream once the answer is complete (a call is only final when it parses)."""
    answer = answer_text(plan)
    yield chunk({"role": "assistant", "content": None}, None)
    try:
        async for piece in stream:
            delta = answer.feed(piece)
            if delta:
                yield chunk({"content": delta}, None)
    except BrowserLLMError as exc:
        yield openai_error_of(exc)
        yield "[DONE]"
        return
    completion = stream.completion
    assert completion is not None
    outcome = _outcome(plan, completion, request_id)
    rest = answer.rest(outcome.content)
    if rest:
        yield chunk({"content": rest}, None)
    for index, call in enumerate(outcome.calls):
        head = {"index": index, "id": call.id, "type": "function"}
        yield chunk(
            {"tool_calls": [{**head, "function": {"name": call.name, "arguments": ""}}]}, None
        )
        args = call.arguments
        for start in range(0, len(args), _ARGUMENT_FRAGMENT):
            fragment = args[start : start + _ARGUMENT_FRAGMENT]
            yield chunk(
                {"tool_calls": [{"index": index, "function": {"arguments": fragment}}]}, None
            )
    yield chunk({}, _finish(outcome, completion))
    for extra in tail(completion):
        yield extra
    yield "[DONE]"
