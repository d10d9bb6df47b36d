"""OpenAI's chat and completion bodies -> neutral calls, with OpenAI's defaults."""

from __future__ import annotations

import math
from dataclasses import replace

from browser_llm.api.logprob_views import legacy_option, logprobs_option
from browser_llm.api.openai.fields import refuse_unsupported
from browser_llm.api.openai.protocol import (
    ChatCompletionRequest,
    CompletionRequest,
    ResponseFormat,
    ToolChoice,
)
from browser_llm.core.durations import keep_alive_seconds
from browser_llm.core.errors import ValidationError
from browser_llm.core.types import GenerationParams
from browser_llm.service.calls import Call, OutputFormat, ToolRequest, stop_strings
from browser_llm.service.tools.generic import HistoryTurn

__all__ = ["chat_call", "completion_call"]

_DEFAULT_MAX_TOKENS = 4096  # OpenAI's default is "until done": clamped to the context
_COMPLETION_MAX_TOKENS = 16  # OpenAI's default for /v1/completions
_MAX_BIASES = 1024  # logit_bias entries per request


def _params(body: ChatCompletionRequest | CompletionRequest, default_max: int) -> GenerationParams:
    refuse_unsupported(body)
    max_tokens = body.max_tokens
    if isinstance(body, ChatCompletionRequest) and body.max_completion_tokens is not None:
        max_tokens = body.max_completion_tokens
    return GenerationParams(
        max_tokens=max_tokens or default_max,
        temperature=1.0 if body.temperature is None else float(body.temperature),
        top_p=1.0 if body.top_p is None else float(body.top_p),
        top_k=40,
        frequency_penalty=float(body.frequency_penalty or 0.0),
        presence_penalty=float(body.presence_penalty or 0.0),
        stop=stop_strings(body.stop),
        seed=None if body.seed is None else body.seed & 0xFFFFFFFF,
        logit_bias=_logit_bias(body.logit_bias),
    )


def _logit_bias(raw: dict[str, float] | None) -> tuple[tuple[int, float], ...]:
    """OpenAI's logit_bias: token id (a string key) -> -100..100, added to that token's
    logit; -100 bans it (as OpenAI documents). The engine checks the ids against the model's
    vocabulary."""
    if raw is not None and len(raw) > _MAX_BIASES:
        raise ValidationError(f"logit_bias: at most {_MAX_BIASES} tokens", {"field": "logit_bias"})
    pairs = []
    for key, value in (raw or {}).items():
        if not key.strip().isdigit():
            raise ValidationError(
                f"logit_bias: keys are token ids; {key!r} is not one", {"field": "logit_bias"}
            )
        if not (math.isfinite(value) and -100 <= value <= 100):
            raise ValidationError(
                f"logit_bias: values are -100 to 100; {key!r} has {value}",
                {"field": "logit_bias"},
            )
        pairs.append((int(key), -math.inf if value <= -100 else float(value)))
    return tuple(pairs)


def _call(
    body: ChatCompletionRequest | CompletionRequest,
    request_id: str,
    arrived: float,
    params: GenerationParams,
    logprobs: int | None,
) -> Call:
    return Call(
        request_id=request_id,
        params=params,
        model=body.model or None,
        engine=body.engine,
        keep_alive_s=keep_alive_seconds(body.keep_alive),
        stream=body.stream,
        logprobs=logprobs,
        n=body.n or 1,
        submitted_at=arrived,
    )


def _output(fmt: ResponseFormat | None) -> OutputFormat | None:
    if fmt is None or fmt.type == "text":
        return None
    if fmt.type == "json_object":
        return OutputFormat(json_mode=True, field="response_format")
    if fmt.json_schema is None:
        raise ValidationError(
            "response_format.json_schema is required", {"field": "response_format"}
        )
    return OutputFormat(schema=fmt.json_schema.schema_, field="response_format")


def _turns(body: ChatCompletionRequest) -> tuple[HistoryTurn, ...]:
    turns = []
    for m in body.messages:
        if m.role == "tool" and m.tool_call_id is None:
            raise ValidationError(
                "messages: a tool message needs tool_call_id", {"field": "messages"}
            )
        calls = tuple((c.id, c.function.name, c.function.arguments) for c in m.tool_calls or ())
        reasoning = m.reasoning_content or m.reasoning or "" if m.role == "assistant" else ""
        turns.append(HistoryTurn(m.role, m.text(), calls, m.tool_call_id, reasoning))
    return tuple(turns)


def _tools(body: ChatCompletionRequest) -> ToolRequest | None:
    if not body.tools:
        return None
    choice = body.tool_choice
    return ToolRequest(
        tools=tuple(
            (t.function.name, t.function.description or "", t.function.parameters)
            for t in body.tools
        ),
        choice=None if isinstance(choice, ToolChoice) else choice,
        named=choice.function.name if isinstance(choice, ToolChoice) else None,
        parallel=body.parallel_tool_calls,
    )


def chat_call(body: ChatCompletionRequest, request_id: str, arrived: float) -> Call:
    params = _params(body, _DEFAULT_MAX_TOKENS)
    logprobs = logprobs_option(body.logprobs, body.top_logprobs)
    call = _call(body, request_id, arrived, params, logprobs)
    return replace(
        call,
        turns=_turns(body),
        tools=_tools(body),
        output=_output(body.response_format),
        thinking=False if body.reasoning_effort == "none" else None,
    )


def completion_call(body: CompletionRequest, request_id: str, arrived: float) -> Call:
    params = _params(body, _COMPLETION_MAX_TOKENS)
    prompt = body.prompt if isinstance(body.prompt, str) else body.prompt[0]
    if not prompt:
        raise ValidationError("prompt: must not be empty", {"field": "prompt"})
    call = _call(body, request_id, arrived, params, legacy_option(body.logprobs))
    return replace(call, prompt=prompt, raw=True)
