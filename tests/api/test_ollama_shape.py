"""Ollama's API against the fake engine: shapes, option mapping, and bad input answered in
Ollama's own error shape ({"error": "..."}) with a 4xx, never a 500."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from browser_llm.api.app import create_app
from browser_llm.config import DEFAULT_MODEL_ID, Settings
from tests.api.conftest import LOCAL
from tests.fakes import FAKE_PIECES, FakeEngine

MODEL = DEFAULT_MODEL_ID
CHAT = {"model": MODEL, "messages": [{"role": "user", "content": "hi"}]}
WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Weather in a city",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}},
            "required": ["city"],
        },
    },
}


def lines(resp: Any) -> list[dict[str, Any]]:
    return [json.loads(line) for line in resp.text.splitlines() if line]


def test_generate_streams_ndjson_by_default(client: TestClient) -> None:
    resp = client.post("/api/generate", json={"model": MODEL, "prompt": "hi"})
    assert resp.status_code == 200
    assert resp.headers["content-type"].startswith("application/x-ndjson")
    items = lines(resp)
    assert [i["response"] for i in items[:-1]] == list(FAKE_PIECES)
    assert all(i["done"] is False and i["model"] == MODEL for i in items[:-1])
    last = items[-1]
    assert last["done"] is True and last["response"] == "" and last["done_reason"] == "stop"
    for key in ("total_duration", "load_duration", "prompt_eval_duration", "eval_duration"):
        assert isinstance(last[key], int) and last[key] >= 0
    assert last["eval_count"] == len(FAKE_PIECES)


def test_chat_whole_answer_and_system_prompt(client: TestClient, fake_engine: FakeEngine) -> None:
    body = {
        **CHAT,
        "stream": False,
        "tools": [],  # the official client always sends this
        "messages": [{"role": "system", "content": "be brief"}, *CHAT["messages"]],
    }
    resp = client.post("/api/chat", json=body)
    data = resp.json()
    assert data["message"] == {"role": "assistant", "content": "".join(FAKE_PIECES)}
    assert data["done"] is True and data["model"] == MODEL
    sent = fake_engine.submitted[-1]
    assert [m.role for m in sent.messages or ()] == ["system", "user"]
    resp = client.post(
        "/api/generate",
        json={"model": MODEL + ":latest", "prompt": "x", "system": "s", "stream": False},
    )
    assert resp.status_code == 200
    assert [m.content for m in fake_engine.submitted[-1].messages or ()] == ["s", "x"]


def test_options_map_to_sampling_with_ollama_defaults(
    client: TestClient, fake_engine: FakeEngine
) -> None:
    client.post("/api/generate", json={"model": MODEL, "prompt": "x", "stream": False})
    params = fake_engine.submitted[-1].params
    assert (params.temperature, params.top_p, params.top_k) == (0.8, 0.9, 40)
    options = {
        "temperature": 0,
        "top_p": 0.5,
        "top_k": 7,
        "seed": 42,
        "num_predict": 3,
        "stop": ["\n"],
        "repeat_penalty": 1.2,
        "repeat_last_n": 32,
        "presence_penalty": 0.5,
        "frequency_penalty": 0.25,
        "num_ctx": 2048,  # ignored: the server's context decides
        "num_thread": 8,
        "mirostat": 0,  # off: accepted
    }
    resp = client.post(
        "/api/generate", json={"model": MODEL, "prompt": "x", "stream": False, "options": options}
    )
    assert resp.status_code == 200 and resp.json()["done_reason"] == "length"
    p = fake_engine.submitted[-1].params
    assert (p.temperature, p.top_p, p.top_k, p.seed, p.max_tokens) == (0.0, 0.5, 7, 42, 3)
    assert (p.stop, p.repeat_penalty, p.penalty_last_n) == (("\n",), 1.2, 32)
    assert (p.presence_penalty, p.frequency_penalty) == (0.5, 0.25)


def test_format_json_and_schema_set_a_grammar(client: TestClient, fake_engine: FakeEngine) -> None:
    for fmt in ("json", {"type": "object", "properties": {"a": {"type": "integer"}}}):
        client.post("/api/generate", json={"model": MODEL, "prompt": "x", "format": fmt})
        assert fake_engine.submitted[-1].params.grammar
    client.post("/api/generate", json={"model": MODEL, "prompt": "x", "format": ""})
    assert fake_engine.submitted[-1].params.grammar is None


BAD: list[tuple[str, dict[str, Any], int, str]] = [
    ("/api/generate", {"prompt": "x"}, 400, "model is required"),
    ("/api/generate", {"model": "nope", "prompt": "x"}, 404, "not found"),
    ("/api/generate", {"model": MODEL + ":7b", "prompt": "x"}, 404, "not found"),
    ("/api/generate", {"model": "../etc", "prompt": "x"}, 404, "not found"),
    ("/api/generate", {"model": MODEL, "prompt": 5}, 400, "prompt"),
    ("/api/generate", {"model": MODEL, "prompt": "x", "suffix": "y"}, 400, "suffix"),
    ("/api/generate", {"model": MODEL, "prompt": "x", "template": "{{.Prompt}}"}, 400, "template"),
    ("/api/generate", {"model": MODEL, "prompt": "x", "context": [1, 2]}, 400, "context"),
    ("/api/generate", {"model": MODEL, "prompt": "x", "images": ["aGk="]}, 400, "images"),
    ("/api/generate", {"model": MODEL, "prompt": "x", "raw": True, "system": "s"}, 400, "system"),
    ("/api/generate", {"model": MODEL, "prompt": "x", "think": True}, 400, "think"),
    ("/api/generate", {"model": MODEL, "prompt": "x", "top_logprobs": 2}, 400, "top_logprobs"),
    (
        "/api/generate",
        {"model": MODEL, "prompt": "x", "logprobs": True, "top_logprobs": 21},
        400,
        "top_logprobs",
    ),
    ("/api/generate", {"model": MODEL, "prompt": "x", "width": 64}, 400, "width"),
    ("/api/generate", {"model": MODEL, "prompt": "x", "format": "yaml"}, 400, "format"),
    ("/api/generate", {"model": MODEL, "prompt": "x", "format": {"type": "nope"}}, 400, "format"),
    ("/api/generate", {"model": MODEL, "prompt": "x", "keep_alive": "soon"}, 400, "keep_alive"),
    ("/api/generate", {"model": MODEL, "prompt": "x", "unknown": 1}, 400, "unknown"),
    ("/api/chat", {**CHAT, "options": {"temperature": "hot"}}, 400, "options.temperature"),
    ("/api/chat", {**CHAT, "options": {"temperature": 9}}, 400, "options.temperature"),
    ("/api/chat", {**CHAT, "options": {"top_k": 1.5}}, 400, "options.top_k"),
    ("/api/chat", {**CHAT, "options": {"num_predict": 0}}, 400, "options.num_predict"),
    ("/api/chat", {**CHAT, "options": {"min_p": 0.1}}, 400, "options.min_p"),
    ("/api/chat", {**CHAT, "options": {"tfs_z": 0.5}}, 400, "options.tfs_z"),
    ("/api/chat", {**CHAT, "options": {"stop": [""]}}, 400, "options.stop"),
    ("/api/chat", {**CHAT, "options": {"temprature": 0}}, 400, "options.temprature"),
    ("/api/chat", {**CHAT, "options": "fast"}, 400, "options"),
    ("/api/chat", {**CHAT, "tools": [{"type": "function", "function": {}}]}, 400, "tools.0"),
    ("/api/chat", {**CHAT, "tools": [{"type": "retrieval"}]}, 400, "tools.0"),
    ("/api/chat", {**CHAT, "tools": [WEATHER], "format": "json"}, 400, "format"),
    ("/api/chat", {"model": MODEL, "messages": [{"role": "robot", "content": "x"}]}, 400, "role"),
    (
        "/api/chat",
        {"model": MODEL, "messages": [{"role": "assistant", "tool_calls": [{"x": 1}]}]},
        400,
        "tool_calls",
    ),
    ("/api/chat", {"model": MODEL, "messages": "hi"}, 400, "messages"),
    ("/api/show", {}, 400, "model is required"),
    ("/api/show", {"model": "nope"}, 404, "not found"),
    ("/api/pull", {"model": "nope"}, 404, "not found"),
    ("/api/embed", {"model": MODEL}, 400, "input"),
    ("/api/embed", {"model": MODEL, "input": "x", "options": {"num_ctx": -8}}, 400, "options"),
    ("/api/nothing", {}, 404, "no such endpoint"),
]


@pytest.mark.parametrize(("path", "body", "status", "text"), BAD)
def test_bad_input_gets_ollamas_error_shape(
    client: TestClient, path: str, body: dict[str, Any], status: int, text: str
) -> None:
    resp = client.post(path, json=body)
    assert resp.status_code == status, resp.text
    assert list(resp.json()) == ["error"] and text in resp.json()["error"]


def test_malformed_bodies_and_methods(client: TestClient) -> None:
    for raw in ("{", "[]", "null", '"x"'):
        resp = client.post("/api/chat", content=raw, headers={"content-type": "application/json"})
        assert resp.status_code == 400 and "error" in resp.json(), raw
    resp = client.get("/api/chat")
    assert resp.status_code == 405 and set(resp.json()) == {"error"}
    resp = client.request("DELETE", "/api/delete", json={"model": "nope"})
    assert resp.status_code == 404 and set(resp.json()) == {"error"}
    # The seed API keeps its envelope under /api/v1.
    assert client.get("/api/v1/nothing").json()["success"] is False


def test_no_model_loaded_is_an_ollama_error(idle_client: TestClient) -> None:
    # The default model is on disk: it is loaded on demand, as Ollama does.
    resp = idle_client.post("/api/generate", json={"model": MODEL, "prompt": "x", "stream": False})
    assert resp.status_code == 200 and resp.json()["done"] is True


def test_empty_prompt_loads_and_keep_alive_0_unloads(idle_client: TestClient) -> None:
    resp = idle_client.post("/api/generate", json={"model": MODEL})
    assert resp.json()["done_reason"] == "load"
    assert idle_client.get("/api/ps").json()["models"][0]["model"] == MODEL + ":latest"
    resp = idle_client.post("/api/chat", json={"model": MODEL, "messages": [], "keep_alive": 0})
    assert resp.json()["done_reason"] == "unload"
    assert idle_client.get("/api/ps").json()["models"] == []


def test_auth_and_rate_limits_apply(tmp_path: Path) -> None:
    settings = Settings(models_dir=tmp_path / "m", api_key="k" * 16, rate_limit_generate=1)
    with TestClient(create_app(settings, engine=FakeEngine()), base_url=LOCAL) as client:
        resp = client.get("/api/tags")
        assert resp.status_code == 401 and set(resp.json()) == {"error"}
        auth = {"Authorization": "Bearer " + "k" * 16}
        assert client.get("/api/tags", headers=auth).status_code == 200
        body = {**CHAT, "stream": False}
        assert client.post("/api/chat", json=body, headers=auth).status_code == 200
        resp = client.post("/api/generate", json={**body, "prompt": "x"}, headers=auth)
        assert resp.status_code == 429 and set(resp.json()) == {"error"}
        assert "Retry-After" in resp.headers


def test_tools_put_the_functions_in_the_prompt_under_a_grammar(
    client: TestClient, fake_engine: FakeEngine
) -> None:
    history = [
        {"role": "user", "content": "Weather in Paris?"},
        {
            "role": "assistant",
            "content": "",
            "tool_calls": [{"function": {"name": "get_weather", "arguments": {"city": "Paris"}}}],
        },
        {"role": "tool", "content": '{"temp": 21}', "tool_name": "get_weather"},
    ]
    body = {"model": MODEL, "messages": history, "tools": [WEATHER], "stream": False}
    resp = client.post("/api/chat", json=body)
    assert resp.status_code == 200 and resp.json()["done"] is True
    sent = fake_engine.submitted[-1]
    assert sent.params.grammar  # the tool-call format, from the function's schema
    turns = sent.messages or ()
    assert turns[0].role == "system" and "get_weather" in turns[0].content
    assert '"tool_calls"' in turns[2].content and '"Paris"' in turns[2].content
    assert '"tool_response"' in turns[3].content and '"get_weather"' in turns[3].content
    streamed = client.post("/api/chat", json={**body, "stream": True})
    assert lines(streamed)[-1]["done"] is True
