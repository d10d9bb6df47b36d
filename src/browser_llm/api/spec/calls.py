"""POST /generate's body (and the WebSocket's generate payload) -> a neutral call, with the
spec's defaults; a finished generation -> the spec's GenerateResponse."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from browser_llm.api.spec.schemas import GenerateRequestBody, GenerateResponse
from browser_llm.core.durations import keep_alive_seconds
from browser_llm.core.errors import ValidationError
from browser_llm.core.types import GenerationParams
from browser_llm.grammar.check import check_json_output
from browser_llm.service.answer import Done
from browser_llm.service.calls import Call, OutputFormat, stop_strings
from browser_llm.service.stats import tokens_per_second
from browser_llm.service.tools.generic import HistoryTurn

__all__ = ["to_call", "to_response"]

_DEFAULTS = GenerationParams()


def _pick(value: Any, default: Any) -> Any:
    return default if value is None else value


def to_call(body: GenerateRequestBody, request_id: str, arrived: float) -> Call:
    """The neutral call for a validated body (shared by REST and WebSocket)."""
    params = GenerationParams(
        max_tokens=_pick(body.max_tokens, _DEFAULTS.max_tokens),
        temperature=float(_pick(body.temperature, _DEFAULTS.temperature)),
        top_p=float(_pick(body.top_p, _DEFAULTS.top_p)),
        top_k=_pick(body.top_k, _DEFAULTS.top_k),
        frequency_penalty=float(_pick(body.frequency_penalty, _DEFAULTS.frequency_penalty)),
        presence_penalty=float(_pick(body.presence_penalty, _DEFAULTS.presence_penalty)),
        stop=stop_strings(body.stop),
        seed=body.seed,
        ignore_eos=body.ignore_eos,
    )
    turns = None
    if body.history:
        if body.raw:
            raise ValidationError("history cannot be used with raw", {"field": "history"})
        turns = (
            *(HistoryTurn(m.role, m.content) for m in body.history),
            HistoryTurn("user", body.prompt),
        )
    wants_json = body.json_mode or body.json_schema is not None
    return Call(
        request_id=request_id,
        params=params,
        prompt=body.prompt,
        raw=body.raw,
        turns=turns,
        output=OutputFormat(body.json_mode, body.json_schema) if wants_json else None,
        model=body.model,
        engine=body.engine,
        keep_alive_s=keep_alive_seconds(body.keep_alive),
        stream=body.stream,
        submitted_at=arrived,
    )


def to_response(done: Done, model_id: str, body: GenerateRequestBody) -> GenerateResponse:
    """`text`: the answer; a thinking model's reasoning apart, in `reasoning`."""
    completion, text = done.completion, done.content or ""
    usage = completion.usage
    timings = completion.timings
    json_report = None
    if body.json_mode or body.json_schema is not None:
        json_report = {
            **asdict(check_json_output(text, body.json_schema)),
            "closed_early": completion.closed_early,
        }
    return GenerateResponse.model_validate(
        {
            "json": json_report,
            "text": text,
            "reasoning": done.reasoning or None,
            "tokens": usage.completion_tokens,
            "finish_reason": completion.finish_reason,
            "usage": {
                "prompt_tokens": usage.prompt_tokens,
                "completion_tokens": usage.completion_tokens,
                "total_tokens": usage.total_tokens,
                "cached_prompt_tokens": usage.cached_prompt_tokens,
            },
            "performance": {
                "tokens_per_second": round(tokens_per_second(completion), 2),
                "latency_ms": round(timings.time_to_first_token_s * 1000, 2),
                "total_time_ms": round(timings.total_s * 1000, 2),
            },
            "model": model_id,
        }
    )
