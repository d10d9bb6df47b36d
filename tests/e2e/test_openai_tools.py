"""Tool calling and model routing through the official openai package, on the real engine
with the small default model: every call parses, names a real function and matches its
schema, whatever the model's luck (the grammar sees to it)."""

from __future__ import annotations

import concurrent.futures
import json
from collections.abc import Iterator
from typing import Any

import httpx
import jsonschema
import openai
import pytest

from browser_llm.config import DEFAULT_MODEL_ID as MODEL
from tests.e2e.conftest import Server, served

WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather in a city",
        "parameters": {
            "type": "object",
            "properties": {
                "city": {"type": "string"},
                "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
            },
            "required": ["city", "unit"],
            "additionalProperties": False,
        },
    },
}
ADD = {
    "type": "function",
    "function": {
        "name": "add",
        "description": "Add two integers",
        "parameters": {
            "type": "object",
            "properties": {"a": {"type": "integer"}, "b": {"type": "integer"}},
            "required": ["a", "b"],
        },
    },
}
TODO = {
    "type": "function",
    "function": {
        "name": "add_todo",
        "description": "Add items to a todo list",
        "parameters": {
            "type": "object",
            "properties": {
                "items": {"type": "array", "items": {"type": "string"}, "maxItems": 5},
                "urgent": {"type": "boolean"},
                "due": {"anyOf": [{"type": "string"}, {"type": "null"}]},
            },
            "required": ["items", "urgent"],
        },
    },
}
TOOLS = [WEATHER, ADD, TODO]
SCHEMAS = {t["function"]["name"]: t["function"]["parameters"] for t in TOOLS}  # type: ignore[index]
ASK = [{"role": "user", "content": "What is the weather in Paris, in celsius?"}]


@pytest.fixture
def oai(server: Server) -> Iterator[openai.OpenAI]:
    base = server.base_url.replace("/api/v1", "/v1")
    with openai.OpenAI(base_url=base, api_key="unused", max_retries=0) as client:
        yield client


def _check_call(name: str, arguments: str) -> None:
    assert name in SCHEMAS, name
    jsonschema.validate(json.loads(arguments), SCHEMAS[name])


def test_required_tool_call_round_trip(oai: openai.OpenAI) -> None:
    first = oai.chat.completions.create(
        model=MODEL,
        messages=ASK,  # type: ignore[arg-type]
        tools=[WEATHER],  # type: ignore[list-item]
        tool_choice="required",
        max_tokens=64,
        temperature=0,
    )
    choice = first.choices[0]
    assert choice.finish_reason == "tool_calls"
    calls = choice.message.tool_calls or []
    assert calls and calls[0].id.startswith("call_")
    for call in calls:
        _check_call(call.function.name, call.function.arguments)  # type: ignore[union-attr]
    history = [
        *ASK,
        choice.message.model_dump(exclude_none=True),
        *({"role": "tool", "tool_call_id": c.id, "content": "22 degrees, sunny"} for c in calls),
    ]
    second = oai.chat.completions.create(
        model=MODEL,
        messages=history,  # type: ignore[arg-type]
        tools=[WEATHER],  # type: ignore[list-item]
        tool_choice="none",
        max_tokens=40,
        temperature=0,
    )
    assert second.choices[0].message.content  # a plain answer after the result
    assert not second.choices[0].message.tool_calls


def test_streamed_calls_assemble_to_the_whole_answer(oai: openai.OpenAI) -> None:
    kwargs: dict[str, Any] = {
        "model": MODEL,
        "messages": ASK,
        "tools": TOOLS,
        "tool_choice": {"type": "function", "function": {"name": "get_weather"}},
        "max_tokens": 64,
        "temperature": 0,
    }
    whole = oai.chat.completions.create(**kwargs)
    assembled: dict[int, dict[str, str]] = {}
    finish = None
    for chunk in oai.chat.completions.create(**kwargs, stream=True):
        for choice in chunk.choices:
            finish = choice.finish_reason or finish
            for delta in choice.delta.tool_calls or []:
                entry = assembled.setdefault(delta.index, {"name": "", "arguments": ""})
                if delta.function and delta.function.name:
                    entry["name"] = delta.function.name
                if delta.function and delta.function.arguments:
                    entry["arguments"] += delta.function.arguments
    expected = [
        {"name": c.function.name, "arguments": c.function.arguments}  # type: ignore[union-attr]
        for c in whole.choices[0].message.tool_calls or []
    ]
    assert finish == whole.choices[0].finish_reason == "tool_calls"
    assert [assembled[i] for i in sorted(assembled)] == expected
    assert all(c["name"] == "get_weather" for c in expected)


def test_auto_answers_in_text_or_calls_and_streams_text(oai: openai.OpenAI) -> None:
    kwargs: dict[str, Any] = {
        "model": MODEL,
        "messages": [{"role": "user", "content": "Say hello to me."}],
        "tools": [WEATHER],
        "max_tokens": 48,
        "temperature": 0,
    }
    whole = oai.chat.completions.create(**kwargs).choices[0]
    pieces = []
    for chunk in oai.chat.completions.create(**kwargs, stream=True):
        pieces += [c.delta.content or "" for c in chunk.choices]
    if whole.message.tool_calls:
        for call in whole.message.tool_calls:
            _check_call(call.function.name, call.function.arguments)  # type: ignore[union-attr]
    else:
        assert "".join(pieces) == (whole.message.content or "")


def _one_call(client: httpx.Client, i: int) -> dict[str, Any]:
    prompts = [
        "What is the weather in Oslo?",
        "Add 17 and 25.",
        "Remind me to buy milk and eggs, it is urgent.",
        "Is it raining in Lima? Use fahrenheit.",
        "I need the sum of 3 and 4, and the weather in Rome.",
    ]
    body = {
        "model": MODEL,
        "messages": [{"role": "user", "content": prompts[i % len(prompts)]}],
        "tools": TOOLS,
        "tool_choice": "required",
        "max_tokens": 32 + (i % 4) * 24,  # 32-104: some answers are cut short
        "temperature": [0.0, 0.7, 1.0, 1.3][i % 4],
        "seed": i,
    }
    resp = client.post("/chat/completions", json=body)
    assert resp.status_code == 200, resp.text
    return dict(resp.json()["choices"][0])


def test_hundreds_of_required_calls_all_parse_and_match_their_schemas(server: Server) -> None:
    base = server.base_url.replace("/api/v1", "/v1")
    with (
        httpx.Client(base_url=base, timeout=300) as client,
        concurrent.futures.ThreadPoolExecutor(8) as pool,
    ):
        choices = list(pool.map(lambda i: _one_call(client, i), range(120)))
    called = 0
    for choice in choices:
        calls = choice["message"].get("tool_calls") or []
        # A call is returned only when complete; one cut off by max_tokens is left out.
        assert choice["finish_reason"] == ("tool_calls" if calls else "length"), choice
        for call in calls:
            _check_call(call["function"]["name"], call["function"]["arguments"])
        called += bool(calls)
    # Cut-short answers carry no call; most budgets here fit one, so calls must be common.
    assert called >= len(choices) // 4, f"only {called} of {len(choices)} answered with calls"


def test_fields_that_would_change_the_answer_are_refused_by_name(oai: openai.OpenAI) -> None:
    for extra, param in (
        ({"logit_bias": {"99999999": -100}}, "logit_bias"),  # not in the vocabulary
        ({"functions": [{"name": "f"}]}, "functions"),
        ({"modalities": ["text", "audio"]}, "modalities"),
        ({"tool_choice": "auto"}, "tool_choice"),  # without tools
        ({"max_tokens": 0}, "max_tokens"),
        ({"made_up_field": 1}, "made_up_field"),
    ):
        with pytest.raises(openai.BadRequestError) as err:
            oai.chat.completions.create(
                model=MODEL,
                messages=ASK,  # type: ignore[arg-type]
                extra_body=extra,
            )
        assert err.value.body["param"] == param, (extra, err.value.body)  # type: ignore[index]
    # Metadata changes no answer: accepted.
    ok = oai.chat.completions.create(
        model=MODEL,
        messages=ASK,  # type: ignore[arg-type]
        max_tokens=4,
        user="u-1",
        metadata={"k": "v"},
        store=False,
    )
    assert ok.choices[0].finish_reason in ("stop", "length")


def test_agent_sized_max_tokens_are_clamped_not_refused(oai: openai.OpenAI) -> None:
    resp = oai.chat.completions.create(
        model=MODEL,
        messages=ASK,  # type: ignore[arg-type]
        max_completion_tokens=32000,
        temperature=0,
    )
    assert resp.choices[0].finish_reason in ("stop", "length")


def test_model_names_route_aliases_load_on_demand_and_unknown_is_404(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    with served(
        tmp_path_factory.mktemp("routing"),
        BROWSER_LLM_ALIASES=f"gpt-4o-mini={MODEL},small-gemma=gemma3-270m-q4",
    ) as srv:
        base = srv.base_url.replace("/api/v1", "/v1")
        with openai.OpenAI(base_url=base, api_key="unused", max_retries=0) as oai:
            ids = {m.id for m in oai.models.list()}
            assert {MODEL, "gpt-4o-mini", "gemma3-270m-q4", "small-gemma"} <= ids
            by_alias = oai.chat.completions.create(
                model="gpt-4o-mini",
                messages=ASK,
                max_tokens=4,  # type: ignore[arg-type]
            )
            assert by_alias.model == MODEL
            # A model on disk that is not loaded: loaded for this request, named in the answer.
            gemma = oai.completions.create(model="small-gemma", prompt="One, two,", max_tokens=4)
            assert gemma.model == "gemma3-270m-q4"
            assert srv.status()["model"]["id"] == "gemma3-270m-q4"
            back = oai.completions.create(model=f"{MODEL}:latest", prompt="Hi", max_tokens=4)
            assert back.model == MODEL
            with pytest.raises(openai.NotFoundError) as missing:
                oai.chat.completions.create(
                    model="gpt-5",
                    messages=ASK,
                    max_tokens=4,  # type: ignore[arg-type]
                )
            assert missing.value.body["param"] == "model"  # type: ignore[index]
        logs = httpx.get(f"{srv.base_url}/debug/logs", params={"limit": 1000}).json()
        assert any("loading it on demand" in r["message"] for r in logs["data"]["logs"])
        # The seed API takes the same `model` extension.
        seed = httpx.post(
            f"{srv.base_url}/generate",
            json={"prompt": "Hi", "max_tokens": 3, "model": "small-gemma"},
            timeout=300,
        ).json()
        assert seed["data"]["model"] == "gemma3-270m-q4"
