"""Anthropic's Messages API through the official `anthropic` SDK (only the base URL set), on
the real engine with the default model. Shapes, stop reasons and consistency between
routes are checked, never the model's words (kernels differ per CPU)."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

import anthropic
import jsonschema
import pydantic
import pytest

from browser_llm.config import DEFAULT_MODEL_ID as MODEL
from tests.e2e.conftest import Server

GREEDY: dict[str, Any] = {"extra_body": {"temperature": 0}}  # SDK 2.17 sends no temperature
ASK = [{"role": "user", "content": "Tell me about the sea in two sentences."}]
WEATHER = {
    "name": "get_weather",
    "description": "Current weather in a city",
    "input_schema": {
        "type": "object",
        "properties": {
            "city": {"type": "string"},
            "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
        },
        "required": ["city", "unit"],
        "additionalProperties": False,
    },
}
ADD = {
    "name": "add",
    "description": "Add two integers",
    "input_schema": {
        "type": "object",
        "properties": {"a": {"type": "integer"}, "b": {"type": "integer"}},
        "required": ["a", "b"],
    },
}
SCHEMAS = {t["name"]: t["input_schema"] for t in (WEATHER, ADD)}
WEATHER_ASK = [{"role": "user", "content": "What is the weather in Paris, in celsius?"}]


@pytest.fixture
def claude(server: Server) -> Iterator[anthropic.Anthropic]:
    root = server.base_url.removesuffix("/api/v1")
    with anthropic.Anthropic(base_url=root, api_key="unused", max_retries=0) as client:
        yield client


def _text(message: Any) -> str:
    return "".join(b.text for b in message.content if b.type == "text")


def _check_tool_uses(message: Any, allowed: set[str]) -> list[Any]:
    uses = [b for b in message.content if b.type == "tool_use"]
    assert uses and message.stop_reason == "tool_use", message
    for use in uses:
        assert use.name in allowed and use.id
        jsonschema.validate(use.input, SCHEMAS[use.name])
    return uses


def test_create_and_stream_agree(claude: anthropic.Anthropic) -> None:
    whole = claude.messages.create(model=MODEL, max_tokens=48, messages=ASK, **GREEDY)  # type: ignore[arg-type]
    assert whole.type == "message" and whole.role == "assistant" and whole.model == MODEL
    assert whole.id.startswith("msg_")
    assert whole.stop_reason in ("end_turn", "max_tokens")
    assert 0 < whole.usage.output_tokens <= 48
    prompt = whole.usage.input_tokens + (whole.usage.cache_read_input_tokens or 0)
    assert prompt > 0
    with claude.messages.stream(model=MODEL, max_tokens=48, messages=ASK, **GREEDY) as stream:  # type: ignore[arg-type]
        pieces = list(stream.text_stream)
        final = stream.get_final_message()  # the SDK's own accumulator of the events
    assert "".join(pieces) == _text(final) == _text(whole)  # greedy: the same answer
    assert (final.stop_reason, final.usage.output_tokens) == (
        whole.stop_reason,
        whole.usage.output_tokens,
    )
    assert final.usage.input_tokens + (final.usage.cache_read_input_tokens or 0) == prompt


def test_max_tokens_above_the_context_is_clamped(claude: anthropic.Anthropic) -> None:
    # Claude Code asks for 32,000 on every (streamed) request; the context holds 4,096.
    hi = [{"role": "user", "content": "Say hi."}]
    with claude.messages.stream(model=MODEL, max_tokens=32000, messages=hi, **GREEDY) as stream:  # type: ignore[arg-type]
        message = stream.get_final_message()
    assert message.stop_reason in ("end_turn", "max_tokens")
    assert message.usage.output_tokens < 4096


def test_stop_sequence_ends_the_answer(claude: anthropic.Anthropic) -> None:
    whole = claude.messages.create(model=MODEL, max_tokens=32, messages=ASK, **GREEDY)  # type: ignore[arg-type]
    text = _text(whole)
    words = text.split()
    assert len(words) >= 3, text
    stop = words[2]
    cut = claude.messages.create(
        model=MODEL,
        max_tokens=32,
        messages=ASK,  # type: ignore[arg-type]
        stop_sequences=[stop],
        **GREEDY,
    )
    assert (cut.stop_reason, cut.stop_sequence) == ("stop_sequence", stop)
    assert _text(cut) == text[: text.index(stop)]


def test_tool_round_trip_with_tool_choice_any(claude: anthropic.Anthropic) -> None:
    first = claude.messages.create(
        model=MODEL,
        max_tokens=96,
        messages=WEATHER_ASK,  # type: ignore[arg-type]
        tools=[WEATHER, ADD],  # type: ignore[list-item]
        tool_choice={"type": "any"},
        **GREEDY,
    )
    uses = _check_tool_uses(first, {"get_weather", "add"})
    assert all(u.id.startswith("toolu_") for u in uses)  # Anthropic's form of the ids
    history = [
        *WEATHER_ASK,
        {"role": "assistant", "content": [b.model_dump(exclude_none=True) for b in first.content]},
        {
            "role": "user",
            "content": [
                {"type": "tool_result", "tool_use_id": u.id, "content": "22 degrees, sunny"}
                for u in uses
            ],
        },
    ]
    second = claude.messages.create(
        model=MODEL,
        max_tokens=40,
        messages=history,  # type: ignore[arg-type]
        tools=[WEATHER, ADD],  # type: ignore[list-item]
        tool_choice={"type": "none"},
        **GREEDY,
    )
    assert second.stop_reason in ("end_turn", "max_tokens")
    assert _text(second) and all(b.type == "text" for b in second.content)


def test_named_tool_streams_like_the_whole_answer(claude: anthropic.Anthropic) -> None:
    kwargs: dict[str, Any] = {
        "model": MODEL,
        "max_tokens": 64,
        "messages": [{"role": "user", "content": "What is 17 plus 25?"}],
        "tools": [WEATHER, ADD],
        "tool_choice": {"type": "tool", "name": "add", "disable_parallel_tool_use": True},
        **GREEDY,
    }
    whole = claude.messages.create(**kwargs)
    (use,) = _check_tool_uses(whole, {"add"})
    with claude.messages.stream(**kwargs) as stream:
        final = stream.get_final_message()  # input_json_delta fragments, assembled by the SDK
    (streamed,) = _check_tool_uses(final, {"add"})
    assert (streamed.name, streamed.input) == (use.name, use.input)


class City(pydantic.BaseModel):
    name: str
    population: int
    coastal: bool


def test_output_config_format_is_structured_output(claude: anthropic.Anthropic) -> None:
    ask = [{"role": "user", "content": "Describe Lisbon as JSON."}]
    schema = City.model_json_schema()
    raw = claude.messages.create(
        model=MODEL,
        max_tokens=64,
        messages=ask,  # type: ignore[arg-type]
        output_config={"format": {"type": "json_schema", "schema": schema}},
        **GREEDY,
    )
    jsonschema.validate(json.loads(_text(raw)), schema)  # parses, whatever max_tokens did
    parsed = claude.messages.parse(
        model=MODEL,
        max_tokens=64,
        messages=ask,  # type: ignore[arg-type]
        output_format=City,
        **GREEDY,
    )
    assert isinstance(parsed.parsed_output, City)


def test_count_tokens_is_the_prompt_a_message_reads(claude: anthropic.Anthropic) -> None:
    for tools in ([], [WEATHER, ADD]):
        extra: dict[str, Any] = {"tools": tools, "tool_choice": {"type": "any"}} if tools else {}
        counted = claude.messages.count_tokens(model=MODEL, messages=WEATHER_ASK, **extra)  # type: ignore[arg-type]
        message = claude.messages.create(
            model=MODEL,
            max_tokens=48,
            messages=WEATHER_ASK,  # type: ignore[arg-type]
            **extra,
            **GREEDY,
        )
        read = message.usage.input_tokens + (message.usage.cache_read_input_tokens or 0)
        assert counted.input_tokens == read
    # max_tokens 0 (Anthropic's cache pre-warming): the prompt counted, nothing generated.
    warm = claude.messages.create(model=MODEL, max_tokens=0, messages=WEATHER_ASK)  # type: ignore[arg-type]
    assert (warm.content, warm.stop_reason, warm.usage.output_tokens) == ([], "max_tokens", 0)
    assert (
        warm.usage.input_tokens
        == claude.messages.count_tokens(
            model=MODEL,
            messages=WEATHER_ASK,  # type: ignore[arg-type]
        ).input_tokens
    )


def test_errors_are_the_sdks_own_exceptions(claude: anthropic.Anthropic) -> None:
    with pytest.raises(anthropic.NotFoundError) as unknown:
        claude.messages.create(model="claude-sonnet-9", max_tokens=8, messages=ASK)  # type: ignore[arg-type]
    assert unknown.value.body["error"]["type"] == "not_found_error"  # type: ignore[index]
    image = {
        "type": "image",
        "source": {"type": "base64", "media_type": "image/png", "data": "AA=="},
    }
    with pytest.raises(anthropic.BadRequestError, match="image blocks"):
        claude.messages.create(
            model=MODEL,
            max_tokens=8,
            messages=[{"role": "user", "content": [image]}],  # type: ignore[list-item]
        )
    long = [{"role": "user", "content": "sea " * 6000}]  # beyond the 4,096-token context
    with pytest.raises(anthropic.BadRequestError) as too_long:
        claude.messages.create(model=MODEL, max_tokens=8, messages=long)  # type: ignore[arg-type]
    message = too_long.value.body["error"]["message"]  # type: ignore[index]
    assert re.fullmatch(r"prompt is too long: \d+ tokens > \d+ maximum", message), message
    with (
        pytest.raises(anthropic.BadRequestError),
        claude.messages.stream(
            model=MODEL,
            max_tokens=8,
            messages=long,  # type: ignore[arg-type]
        ) as stream,
    ):
        stream.get_final_message()
