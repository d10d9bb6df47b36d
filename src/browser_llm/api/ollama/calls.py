"""Ollama's /api/generate and /api/chat bodies -> neutral calls, with Ollama's defaults.

Fields that would change the answer in ways this server cannot follow are refused with
400 naming them; see docs/api.md for the table of every field. Ollama has no
tool_choice: the model decides ("auto"), and may call several functions.
"""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

from browser_llm.api.logprob_views import logprobs_option
from browser_llm.api.ollama.options import generation_params, output_format
from browser_llm.api.ollama.protocol import OllamaChatRequest, OllamaGenerateRequest
from browser_llm.core.durations import keep_alive_seconds
from browser_llm.core.errors import ValidationError
from browser_llm.service.calls import Call, ToolRequest
from browser_llm.service.tools.generic import HistoryTurn

__all__ = ["chat_call", "generate_call"]


def _refuse(field: str, why: str) -> ValidationError:
    return ValidationError(f"{field}: {why}", {"field": field})


def _common(
    body: OllamaGenerateRequest | OllamaChatRequest,
    model_id: str,
    request_id: str,
    arrived: float,
    context_size: int,
) -> Call:
    thinking = _think(body.think)
    logprobs = logprobs_option(body.logprobs, body.top_logprobs)
    if body.debug_render_only:
        raise _refuse("_debug_render_only", "not supported")
    return Call(
        request_id=request_id,
        params=generation_params(body.options, context_size),
        output=output_format(body.format),
        model=model_id,  # resolved with Ollama's wording by the route
        keep_alive_s=keep_alive_seconds(body.keep_alive),
        stream=body.stream is not False,  # Ollama streams unless told not to
        logprobs=logprobs,
        submitted_at=arrived,
        thinking=thinking,
    )


def _think(value: bool | str | None) -> bool | None:
    """Ollama's `think`: a bool, or an effort (gpt-oss) that here means on."""
    if value is None or isinstance(value, bool):
        return value
    if value in ("", "false"):
        return False
    if value in ("true", "low", "medium", "high"):
        return True
    raise _refuse("think", "true, false, or 'low', 'medium', 'high'")


def _check_generate(body: OllamaGenerateRequest) -> None:
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


def generate_call(
    body: OllamaGenerateRequest, model_id: str, request_id: str, arrived: float, context: int
) -> Call:
    call = _common(body, model_id, request_id, arrived, context)
    _check_generate(body)
    if not body.prompt:
        return call  # nothing to answer: the route loads (or unloads) the model
    if body.system:
        turns = (HistoryTurn("system", body.system), HistoryTurn("user", body.prompt))
        return replace(call, turns=turns)
    return replace(call, prompt=body.prompt, raw=bool(body.raw))


def _tools(body: OllamaChatRequest) -> ToolRequest | None:
    if not body.tools:
        return None
    tools = []
    for i, tool in enumerate(body.tools):
        fn = tool.get("function")
        if tool.get("type", "function") != "function" or not isinstance(fn, dict):
            raise _refuse(f"tools.{i}", 'each tool is {"type": "function", "function": {...}}')
        name, params = fn.get("name"), fn.get("parameters")
        if not isinstance(name, str) or not name or not isinstance(params, dict | None):
            raise _refuse(f"tools.{i}.function", "needs a name and JSON Schema parameters")
        description = fn.get("description")
        tools.append((name, description if isinstance(description, str) else "", params))
    return ToolRequest(tuple(tools), parallel=True, has_choice=False)


def _calls(i: int, raw: list[dict[str, Any]]) -> tuple[tuple[str, str, str], ...]:
    calls = []
    for call in raw:
        fn = call.get("function")
        name = fn.get("name") if isinstance(fn, dict) else None
        args = fn.get("arguments", {}) if isinstance(fn, dict) else None
        if not isinstance(name, str) or not isinstance(args, dict | str):
            raise _refuse(f"messages.{i}.tool_calls", "each is {function: {name, arguments}}")
        text = args if isinstance(args, str) else json.dumps(args, ensure_ascii=False)
        # Ollama names results by function, not by id: the name serves as the id.
        calls.append((str(call.get("id") or name), name, text))
    return tuple(calls)


def chat_turns(body: OllamaChatRequest) -> tuple[HistoryTurn, ...]:
    turns = []
    for i, m in enumerate(body.messages or []):
        if m.images:
            raise _refuse(f"messages.{i}.images", "this server's models read text only")
        calls = _calls(i, m.tool_calls or []) if m.role == "assistant" else ()
        if m.tool_calls and m.role != "assistant":
            raise _refuse(f"messages.{i}.tool_calls", "only assistant messages carry tool calls")
        call_id = m.tool_call_id or m.tool_name if m.role == "tool" else None
        reasoning = m.thinking or "" if m.role == "assistant" else ""
        turns.append(HistoryTurn(m.role, m.content, calls, call_id, reasoning))
    return tuple(turns)


def chat_call(
    body: OllamaChatRequest, model_id: str, request_id: str, arrived: float, context: int
) -> Call:
    call = _common(body, model_id, request_id, arrived, context)
    return replace(call, turns=chat_turns(body), tools=_tools(body))
