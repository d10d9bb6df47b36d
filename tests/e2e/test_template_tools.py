"""Tool calling through the model's own chat template, on the real engine: a copy of the
default model whose template is in the Hermes format (tests/hermes_template.py). The
template renders the functions and the history (checked token for token against the
same template rendered here), and every call the model makes parses and validates."""

from __future__ import annotations

import concurrent.futures
import json
from collections.abc import Iterator
from typing import Any

import anthropic
import httpx
import jsonschema
import ollama
import openai
import pytest

from browser_llm.core.types import ChatMessage
from browser_llm.engine.base import GenerationRequest
from browser_llm.engine.chat_template import ChatTemplate
from browser_llm.engine.prompt import prompt_text
from tests.e2e.conftest import Server, served
from tests.e2e.test_models_real import write_user_models
from tests.e2e.test_openai_tools import ADD
from tests.hermes_template import HERMES_TEMPLATE, hermes_model

MODEL = "smollm2-hermes"
WEATHER: dict[str, Any] = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather in a city",
        "parameters": {
            "type": "object",
            "properties": {
                "city": {"type": "string", "maxLength": 40},
                "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
            },
            "required": ["city", "unit"],
            "additionalProperties": False,
        },
    },
}
SCHEMAS = {t["function"]["name"]: t["function"]["parameters"] for t in (WEATHER, ADD)}


@pytest.fixture(scope="module")
def hermes_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    tmp = tmp_path_factory.mktemp("hermes")
    path = hermes_model(tmp / "files")
    source = {"type": "file", "file": str(path)}
    write_user_models(tmp / "models", [{"id": MODEL, "source": source}])
    with served(
        tmp, BROWSER_LLM_MODEL=MODEL, BROWSER_LLM_CONTEXT_SIZE="2048", BROWSER_LLM_PARALLEL="4"
    ) as srv:
        assert srv.status()["status"] == "ready", srv.log.read_text()
        yield srv


@pytest.fixture(scope="module")
def client(hermes_server: Server) -> openai.OpenAI:
    base = hermes_server.base_url.removesuffix("/api/v1") + "/v1"
    return openai.OpenAI(base_url=base, api_key="unused", max_retries=0, timeout=120)


def _expected_prompt_tokens(server: Server, messages: list[ChatMessage], tools: Any) -> int:
    """The prompt as this template renders it here, tokenized by the server's model."""
    request = GenerationRequest(messages=tuple(messages), tools=json.dumps(tools))
    text, _ = prompt_text(ChatTemplate(HERMES_TEMPLATE, "", ""), request)
    resp = httpx.post(
        f"{server.base_url}/tokenize", json={"text": text, "add_special": True}, timeout=30
    )
    assert resp.status_code == 200, resp.text
    count: int = resp.json()["data"]["count"]
    return count


def _check_calls(calls: Any) -> None:
    assert calls
    for call in calls:
        args = json.loads(call.function.arguments)
        jsonschema.validate(args, SCHEMAS[call.function.name])


def test_the_template_renders_the_tools(client: openai.OpenAI, hermes_server: Server) -> None:
    question = [{"role": "user", "content": "What is the weather in Paris, in celsius?"}]
    resp = client.chat.completions.create(
        model=MODEL,
        messages=question,  # type: ignore[arg-type]
        tools=[WEATHER, ADD],  # type: ignore[list-item]
        tool_choice="required",
        temperature=0,
        max_tokens=80,
    )
    choice = resp.choices[0]
    assert choice.finish_reason == "tool_calls"
    _check_calls(choice.message.tool_calls)
    assert resp.usage is not None
    expected = _expected_prompt_tokens(
        hermes_server, [ChatMessage("user", question[0]["content"])], [WEATHER, ADD]
    )
    assert resp.usage.prompt_tokens == expected


def test_a_tool_round_trip_goes_through_the_template(
    client: openai.OpenAI, hermes_server: Server
) -> None:
    call = {"id": "call_1", "type": "function"}
    call["function"] = {"name": "add", "arguments": '{"a": 2, "b": 3}'}
    messages: list[dict[str, Any]] = [
        {"role": "system", "content": "Answer briefly."},
        {"role": "user", "content": "What is 2 + 3?"},
        {"role": "assistant", "content": None, "tool_calls": [call]},
        {"role": "tool", "tool_call_id": "call_1", "content": "5"},
    ]
    resp = client.chat.completions.create(
        model=MODEL,
        messages=messages,  # type: ignore[arg-type]
        tools=[ADD],  # type: ignore[list-item]
        temperature=0,
        max_tokens=24,
    )
    choice = resp.choices[0]
    assert choice.message.content or choice.message.tool_calls
    if choice.message.tool_calls:
        _check_calls(choice.message.tool_calls)
    rendered = [
        ChatMessage("system", "Answer briefly."),
        ChatMessage("user", "What is 2 + 3?"),
        ChatMessage("assistant", "", (("call_1", "add", '{"a": 2, "b": 3}'),)),
        ChatMessage("tool", "5", (), "call_1"),
    ]
    assert resp.usage is not None
    assert resp.usage.prompt_tokens == _expected_prompt_tokens(hermes_server, rendered, [ADD])


def _one(client: openai.OpenAI, i: int) -> tuple[str | None, Any, Any]:
    choice = ["required", "auto", {"type": "function", "function": {"name": "add"}}][i % 3]
    resp = client.chat.completions.create(
        model=MODEL,
        messages=[{"role": "user", "content": f"Request {i}: weather in Oslo, or add {i} and 7."}],
        tools=[WEATHER, ADD],  # type: ignore[list-item]
        tool_choice=choice,  # type: ignore[arg-type]
        temperature=[0.0, 0.7, 1.2][i % 3],
        max_tokens=[48, 64, 96][i % 3],
        seed=i,
    )
    return resp.choices[0].finish_reason, resp.choices[0].message, choice


def test_every_call_parses_and_validates(client: openai.OpenAI) -> None:
    """60 requests over tool_choice required / auto / named, temperatures 0 to 1.2: every
    returned call validates; required and named always call (named: only that one)."""
    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        results = list(pool.map(lambda i: _one(client, i), range(60)))
    calls = 0
    for finish, message, choice in results:
        if message.tool_calls:
            _check_calls(message.tool_calls)
            calls += len(message.tool_calls)
            assert finish == "tool_calls"
        if choice == "required":
            # At 48 tokens a call may be cut short: then no call and finish "length".
            assert message.tool_calls or finish == "length"
        if isinstance(choice, dict):
            assert all(c.function.name == "add" for c in message.tool_calls or [])
    assert calls >= 30


def test_streamed_calls_assemble(client: openai.OpenAI) -> None:
    stream = client.chat.completions.create(
        model=MODEL,
        messages=[{"role": "user", "content": "Add 40 and 2."}],
        tools=[ADD],  # type: ignore[list-item]
        tool_choice="required",
        temperature=0,
        max_tokens=64,
        stream=True,
    )
    args: dict[int, str] = {}
    names: dict[int, str] = {}
    finish = None
    for chunk in stream:
        if not chunk.choices:
            continue
        delta = chunk.choices[0].delta
        for part in delta.tool_calls or []:
            if part.function and part.function.name:
                names[part.index] = part.function.name
            if part.function and part.function.arguments:
                args[part.index] = args.get(part.index, "") + part.function.arguments
        finish = chunk.choices[0].finish_reason or finish
    assert finish == "tool_calls"
    assert names and set(names.values()) == {"add"}
    for text in args.values():
        jsonschema.validate(json.loads(text), SCHEMAS["add"])


def test_ollama_chat_with_tools(hermes_server: Server) -> None:
    host = hermes_server.base_url.removesuffix("/api/v1")
    answer = ollama.Client(host=host, timeout=120).chat(
        model=MODEL,
        messages=[{"role": "user", "content": "What is the weather in Rome in celsius?"}],
        tools=[WEATHER],
        options={"temperature": 0, "num_predict": 64},
    )
    for call in answer.message.tool_calls or []:
        jsonschema.validate(dict(call.function.arguments), SCHEMAS["get_weather"])
    assert answer.message.tool_calls or answer.message.content


def test_anthropic_tools_through_the_template(hermes_server: Server) -> None:
    """/v1/messages on the same layer: the template renders the tools (count_tokens and the
    answer's usage both equal the prompt rendered here), tool_choice any calls."""
    root = hermes_server.base_url.removesuffix("/api/v1")
    tools = [
        {
            "name": t["function"]["name"],
            "description": t["function"]["description"],
            "input_schema": t["function"]["parameters"],
        }
        for t in (WEATHER, ADD)
    ]
    question = "What is the weather in Paris, in celsius?"
    kwargs: dict[str, Any] = {
        "model": MODEL,
        "messages": [{"role": "user", "content": question}],
        "tools": tools,
        "tool_choice": {"type": "any"},
    }
    expected = _expected_prompt_tokens(
        hermes_server, [ChatMessage("user", question)], [WEATHER, ADD]
    )
    with anthropic.Anthropic(base_url=root, api_key="unused", max_retries=0) as claude:
        assert claude.messages.count_tokens(**kwargs).input_tokens == expected
        message = claude.messages.create(max_tokens=80, extra_body={"temperature": 0}, **kwargs)
    assert message.stop_reason == "tool_use"
    uses = [b for b in message.content if b.type == "tool_use"]
    assert uses
    for use in uses:
        jsonschema.validate(use.input, SCHEMAS[use.name])
    assert message.usage.input_tokens + (message.usage.cache_read_input_tokens or 0) == expected
