"""The Responses API, driven by the official openai package against the real engine and the
default model: create, stream (the SDK's own accumulator), retrieve, previous_response_id
over three turns, a function-calling round trip, parse with a pydantic model, and the
store across a restart."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
from pydantic import BaseModel

from browser_llm.config import DEFAULT_MODEL_ID as MODEL
from tests.e2e.conftest import Server, served

WEATHER: Any = {
    "type": "function",
    "name": "get_weather",
    "description": "Current weather in a city",
    "parameters": {
        "type": "object",
        "properties": {"city": {"type": "string"}},
        "required": ["city"],
        "additionalProperties": False,
    },
    "strict": True,
}


def _client(server: Server) -> openai.OpenAI:
    base = server.base_url.replace("/api/v1", "/v1")
    return openai.OpenAI(base_url=base, api_key="unused", max_retries=0)


@pytest.fixture
def oai(server: Server) -> Iterator[openai.OpenAI]:
    with _client(server) as client:
        yield client


def test_create_retrieve_delete(oai: openai.OpenAI) -> None:
    resp = oai.responses.create(
        model=MODEL,
        instructions="You are a terse assistant.",
        input="What is the capital of France?",
        max_output_tokens=30,
        temperature=0,
    )
    assert resp.status in ("completed", "incomplete") and resp.model == MODEL
    assert resp.output_text and resp.output[0].type == "message"
    assert resp.usage is not None and resp.usage.output_tokens > 0
    assert resp.usage.total_tokens == resp.usage.input_tokens + resp.usage.output_tokens
    again = oai.responses.retrieve(resp.id)
    assert again.output_text == resp.output_text and again.id == resp.id
    items = oai.responses.input_items.list(resp.id)
    assert [item.type for item in items.data] == ["message"]
    deleted = oai.responses.delete(resp.id)
    assert deleted is None or getattr(deleted, "deleted", True)
    with pytest.raises(openai.NotFoundError):
        oai.responses.retrieve(resp.id)


def test_stream_accumulates_to_the_same_answer(oai: openai.OpenAI) -> None:
    kwargs: dict[str, Any] = {
        "model": MODEL,
        "input": "Say hello.",
        "max_output_tokens": 64,
        "temperature": 0,
        "store": False,
    }
    whole = oai.responses.create(**kwargs)
    kinds, numbers, last = [], [], None
    with oai.responses.stream(**kwargs) as stream:
        for event in stream:
            kinds.append(event.type)
            numbers.append(event.sequence_number)
            last = event
        # The SDK gives a final response for response.completed only (as with OpenAI's).
        final = stream.get_final_response() if kinds[-1] == "response.completed" else None
    assert kinds[0] == "response.created"
    assert kinds[-1] == f"response.{whole.status}"
    assert numbers == list(range(len(numbers)))
    ended = getattr(last, "response", None)
    assert ended is not None and ended.output_text == whole.output_text
    if final is not None:
        assert final.output_text == whole.output_text


def test_raw_stream_created_event_carries_created_at_and_model(oai: openai.OpenAI) -> None:
    events = list(oai.responses.create(model=MODEL, input="Hi", max_output_tokens=8, stream=True))
    created = events[0]
    assert created.type == "response.created"
    assert created.response.created_at > 0 and created.response.model == MODEL
    deltas = [e for e in events if e.type == "response.output_text.delta"]
    assert all(e.output_index == 0 and e.content_index == 0 for e in deltas)


def test_max_output_tokens_cut_is_incomplete(oai: openai.OpenAI) -> None:
    resp = oai.responses.create(
        model=MODEL, input="Write a long story about a dragon.", max_output_tokens=16
    )
    assert resp.status == "incomplete"
    assert resp.incomplete_details is not None
    assert resp.incomplete_details.reason == "max_output_tokens"
    assert resp.usage is not None and resp.usage.output_tokens == 16


def test_previous_response_id_over_three_turns(oai: openai.OpenAI) -> None:
    first = oai.responses.create(
        model=MODEL,
        instructions="You are a helpful assistant.",
        input="My name is Ada. Say hello.",
        max_output_tokens=24,
        temperature=0,
    )
    second = oai.responses.create(
        model=MODEL,
        previous_response_id=first.id,
        input="What is 2 + 2?",
        max_output_tokens=24,
        temperature=0,
    )
    third = oai.responses.create(
        model=MODEL,
        previous_response_id=second.id,
        input="What is my name?",
        max_output_tokens=24,
        temperature=0,
    )
    assert third.previous_response_id == second.id and third.output_text
    usages = [r.usage for r in (first, second, third)]
    assert all(u is not None for u in usages)
    # Each turn's prompt holds the turns before it...
    assert usages[0].input_tokens < usages[1].input_tokens < usages[2].input_tokens  # type: ignore[union-attr]
    # ...whose KV cells the prefix cache reuses.
    assert usages[2].input_tokens_details.cached_tokens > 0  # type: ignore[union-attr]
    items = oai.responses.input_items.list(third.id)
    assert len(items.data) == 1  # this request's own input


def test_function_call_round_trip(oai: openai.OpenAI) -> None:
    asked = oai.responses.create(
        model=MODEL,
        input="What is the weather in Paris?",
        tools=[WEATHER, {"type": "web_search"}],
        tool_choice="required",
        temperature=0,
    )
    calls = [item for item in asked.output if item.type == "function_call"]
    assert calls and calls[0].name == "get_weather"
    arguments = json.loads(calls[0].arguments)
    assert isinstance(arguments["city"], str)
    answered = oai.responses.create(
        model=MODEL,
        previous_response_id=asked.id,
        input=[
            {
                "type": "function_call_output",
                "call_id": calls[0].call_id,
                "output": json.dumps({"weather": "sunny", "celsius": 21}),
            }
        ],
        tools=[WEATHER],
        tool_choice="none",
        max_output_tokens=40,
        temperature=0,
    )
    assert answered.status in ("completed", "incomplete")
    assert answered.output[0].type == "message" and answered.output_text


def test_streamed_function_call_through_the_sdk_accumulator(oai: openai.OpenAI) -> None:
    with oai.responses.stream(
        model=MODEL,
        input="What is the weather in Paris?",
        tools=[WEATHER],
        tool_choice={"type": "function", "name": "get_weather"},
        temperature=0,
        store=False,
    ) as stream:
        kinds = [event.type for event in stream]
        final = stream.get_final_response()
    assert "response.function_call_arguments.delta" in kinds
    [call] = [item for item in final.output if item.type == "function_call"]
    assert call.name == "get_weather" and isinstance(json.loads(call.arguments)["city"], str)


class City(BaseModel):
    name: str
    country: str
    population: int


def test_parse_with_a_pydantic_model(oai: openai.OpenAI) -> None:
    parsed = oai.responses.parse(
        model=MODEL,
        input="Describe Paris as JSON.",
        text_format=City,
        max_output_tokens=120,
        temperature=0,
    )
    assert isinstance(parsed.output_parsed, City)


def test_a_codex_shaped_request_completes(server: Server) -> None:
    """What Codex CLI sends: developer messages, no instructions, store false, hosted tool
    types, include/reasoning/prompt_cache_key, streamed."""
    body = {
        "model": MODEL,
        "input": [
            {
                "type": "message",
                "role": "developer",
                "content": [{"type": "input_text", "text": "You are a coding agent."}],
            },
            {
                "type": "message",
                "role": "user",
                "content": [{"type": "input_text", "text": "Say hi."}],
            },
        ],
        "tools": [
            {**WEATHER, "name": "shell"},
            {"type": "web_search", "external_web_access": False},
            {"type": "namespace", "name": "mcp", "tools": []},
        ],
        "tool_choice": "auto",
        "parallel_tool_calls": False,
        "reasoning": {"summary": "auto"},
        "store": False,
        "stream": True,
        "include": ["reasoning.encrypted_content"],
        "prompt_cache_key": "a-session",
        "client_metadata": {"session_id": "a-session"},
        "max_output_tokens": 48,
    }
    url = server.base_url.replace("/api/v1", "/v1/responses")
    with httpx.stream("POST", url, json=body, timeout=120) as resp:
        assert resp.status_code == 200, resp.read()
        kinds = [
            json.loads(line[6:])["type"] for line in resp.iter_lines() if line.startswith("data: ")
        ]
    assert kinds[0] == "response.created"
    assert kinds[-1] in ("response.completed", "response.incomplete")


def test_unknown_model_is_a_404(oai: openai.OpenAI) -> None:
    with pytest.raises(openai.NotFoundError):
        oai.responses.create(model="no-such-model", input="hi")


def test_a_conversation_continues_after_a_restart(tmp_path: Path) -> None:
    with served(tmp_path) as srv, _client(srv) as client:
        first = client.responses.create(
            model=MODEL, input="Remember the word apple.", max_output_tokens=16, temperature=0
        )
    with served(tmp_path) as srv, _client(srv) as client:
        assert client.responses.retrieve(first.id).output_text == first.output_text
        second = client.responses.create(
            model=MODEL,
            previous_response_id=first.id,
            input="Which word?",
            max_output_tokens=16,
            temperature=0,
        )
        assert second.status in ("completed", "incomplete")
        assert second.usage is not None and first.usage is not None
        assert second.usage.input_tokens > first.usage.input_tokens
