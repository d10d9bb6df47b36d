"""A tool answer cut at max_tokens keeps its complete calls (issue 33 item 7): the model
wrote the same complete call four times and the engine closed the fifth with filler values;
the closed call is dropped before identical calls are merged, so the real one survives.
Driven through the clients that found it: the openai package and the ollama package."""

from __future__ import annotations

import json
from typing import Any

import ollama
import openai
import pytest
from fastapi.testclient import TestClient

from browser_llm.config import DEFAULT_MODEL_ID
from tests.api.conftest import LOCAL, LiveServer
from tests.fakes import FakeEngine

MODEL = DEFAULT_MODEL_ID
ADD = {
    "type": "function",
    "function": {
        "name": "add_two_numbers",
        "description": "Add two integers",
        "parameters": {
            "type": "object",
            "properties": {"a": {"type": "integer"}, "b": {"type": "integer"}},
            "required": ["a", "b"],
        },
    },
}
QUESTION = [{"role": "user", "content": "What is three plus one?"}]
CALL = '{"name": "add_two_numbers", "arguments": {"a": 3, "b": 1}}'
FILLER = '{"name": "add_two_numbers", "arguments": {"a": 0, "b": 0}}'


def _script(engine: FakeEngine, calls: list[str], closing: str = "") -> None:
    """The engine's answer: these calls, closed at max_tokens by the engine, which wrote
    `closing` (empty: not said, as before the engine reported it)."""
    text = '{"tool_calls": [' + ", ".join(calls) + "]}"
    engine.reply = tuple(text[i : i + 7] for i in range(0, len(text), 7))
    engine.closed_early = True
    engine.closing = closing


@pytest.fixture
def oai(client: TestClient) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{LOCAL}/v1", api_key="unused", http_client=client)


def _ask(oai: openai.OpenAI, stream: bool) -> tuple[list[dict[str, Any]], str | None]:
    """The calls ({name, arguments}) and the finish reason, whole or streamed."""
    kwargs: dict[str, Any] = {
        "model": MODEL,
        "messages": QUESTION,
        "tools": [ADD],
        "max_tokens": 120,
        "temperature": 0,
    }
    if not stream:
        choice = oai.chat.completions.create(**kwargs).choices[0]
        found = choice.message.tool_calls or []
        calls = [{"name": c.function.name, "arguments": c.function.arguments} for c in found]
        return calls, choice.finish_reason
    by_index: dict[int, dict[str, Any]] = {}
    finish = None
    for chunk in oai.chat.completions.create(**kwargs, stream=True):
        delta = chunk.choices[0].delta
        for part in delta.tool_calls or []:
            entry = by_index.setdefault(part.index, {"name": "", "arguments": ""})
            if part.function is not None:
                entry["name"] += part.function.name or ""
                entry["arguments"] += part.function.arguments or ""
        finish = chunk.choices[0].finish_reason or finish
    return list(by_index.values()), finish


@pytest.mark.parametrize("stream", [False, True])
def test_repeated_call_cut_at_max_tokens_keeps_the_call(
    oai: openai.OpenAI, fake_engine: FakeEngine, stream: bool
) -> None:
    _script(fake_engine, [CALL] * 5)  # the fifth, closed by the engine, equals the others
    calls, finish = _ask(oai, stream)
    assert finish == "tool_calls"
    assert [(c["name"], json.loads(c["arguments"])) for c in calls] == [
        ("add_two_numbers", {"a": 3, "b": 1})
    ]


def test_the_closed_call_is_dropped_and_the_complete_one_kept(
    oai: openai.OpenAI, fake_engine: FakeEngine
) -> None:
    _script(fake_engine, [CALL, FILLER])
    calls, finish = _ask(oai, stream=False)
    assert finish == "tool_calls"
    assert [json.loads(c["arguments"]) for c in calls] == [{"a": 3, "b": 1}]


@pytest.mark.parametrize("stream", [False, True])
def test_a_whole_call_the_engine_only_closed_the_list_after_is_kept(
    oai: openai.OpenAI, fake_engine: FakeEngine, stream: bool
) -> None:
    _script(fake_engine, [CALL], closing="]}")
    calls, finish = _ask(oai, stream)
    assert finish == "tool_calls"
    assert [json.loads(c["arguments"]) for c in calls] == [{"a": 3, "b": 1}]


def test_a_call_the_engine_closed_inside_is_dropped_when_it_says_where(
    oai: openai.OpenAI, fake_engine: FakeEngine
) -> None:
    _script(fake_engine, [CALL, FILLER], closing="0}}]}")
    calls, finish = _ask(oai, stream=False)
    assert finish == "tool_calls"
    assert [json.loads(c["arguments"]) for c in calls] == [{"a": 3, "b": 1}]


def test_a_lone_closed_call_is_no_call(oai: openai.OpenAI, fake_engine: FakeEngine) -> None:
    _script(fake_engine, [FILLER])
    calls, finish = _ask(oai, stream=False)
    assert calls == [] and finish == "length"


def test_ollama_chat_keeps_the_call(live_server: LiveServer) -> None:
    _script(live_server.engine, [CALL] * 5)
    client = ollama.Client(host=live_server.url)
    answer = client.chat(model=MODEL, messages=QUESTION, tools=[ADD], options={"num_predict": 120})
    calls = answer.message.tool_calls or []
    assert [(c.function.name, dict(c.function.arguments)) for c in calls] == [
        ("add_two_numbers", {"a": 3, "b": 1})
    ]
