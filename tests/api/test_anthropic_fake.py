"""Anthropic's Messages API (/v1/messages) on the fake engine: the Message and stream shapes
as Anthropic's API defines them, how blocks become the conversation, tool_choice and
output_config reaching the grammar, and Anthropic's error shape and statuses."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from browser_llm.api.app import create_app
from browser_llm.api.error_shapes import anthropic_error, anthropic_error_of, anthropic_status
from browser_llm.config import DEFAULT_MODEL_ID, Settings
from browser_llm.core.errors import InferenceError, ValidationError
from browser_llm.core.types import Completion, Timings, Usage
from browser_llm.engine.base import Admitted, Finished, GenerationHandle, TokenText
from tests.api.conftest import LOCAL
from tests.api.failing_engine import FailingEngine, StallingEngine
from tests.fakes import FAKE_PIECES, FakeEngine

TEXT = "".join(FAKE_PIECES)
ASK = {"role": "user", "content": "Say hi"}
BODY: dict[str, Any] = {"model": DEFAULT_MODEL_ID, "max_tokens": 64, "messages": [ASK]}
WEATHER = {
    "name": "get_weather",
    "description": "Current weather in a city",
    "input_schema": {
        "type": "object",
        "properties": {"city": {"type": "string"}},
        "required": ["city"],
    },
}
CALL_TEXT = '{"tool_calls": [{"name": "get_weather", "arguments": {"city": "Paris"}}]}'


class ScriptedEngine(FakeEngine):
    """Answers every prompt with `text` in small pieces, ended as `finish` says."""

    def __init__(self, text: str, stop_sequence: str | None = None) -> None:
        super().__init__()
        self.text = text
        self.stop_sequence = stop_sequence

    async def _run(self, handle: GenerationHandle) -> None:
        assert self.model is not None
        handle.post(Admitted(7, handle.request.params.max_tokens, False, self.model.model_id))
        pieces = [self.text[i : i + 5] for i in range(0, len(self.text), 5)]
        for piece in pieces:
            await asyncio.sleep(0)
            handle.tokens_generated += 1
            handle.post(TokenText(piece))
        timings = Timings(0.0, 0.001, 0.001, 0.001, time.perf_counter())
        completion = Completion(
            self.text, "stop", Usage(7, len(pieces), 3), timings, stop_sequence=self.stop_sequence
        )
        handle.post(Finished(completion))


def _client(tmp_path: Path, engine: FakeEngine, **settings: Any) -> Iterator[TestClient]:
    config = Settings(models_dir=tmp_path / "models", **settings)
    with TestClient(create_app(config, engine=engine), base_url=LOCAL) as client:
        yield client


@pytest.fixture
def scripted(tmp_path: Path) -> Iterator[tuple[TestClient, ScriptedEngine]]:
    engine = ScriptedEngine(CALL_TEXT)
    for client in _client(tmp_path, engine):
        yield client, engine


def _events(body: str) -> list[tuple[str, dict[str, Any]]]:
    """(event name, data) of every event; the name always equals the data's `type`."""
    assert body.endswith("\n\n")
    out = []
    for block in body.split("\n\n")[:-1]:
        event_line, data_line = block.split("\n")
        name = event_line.removeprefix("event: ")
        data = json.loads(data_line.removeprefix("data: "))
        assert data["type"] == name, block
        out.append((name, data))
    return out


def _check_error(resp: Any, status: int, kind: str, mentions: str = "") -> None:
    assert resp.status_code == status, resp.text
    body = resp.json()
    assert set(body) == {"type", "error"} and body["type"] == "error"
    assert set(body["error"]) == {"type", "message"}
    assert body["error"]["type"] == kind
    assert mentions in body["error"]["message"]


# ---- whole answers ---------------------------------------------------------------------
def test_message_shape(client: TestClient) -> None:
    resp = client.post("/v1/messages", json=BODY, headers={"anthropic-version": "2023-06-01"})
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert body["id"].startswith("msg_") and len(body["id"]) > 10
    assert (body["type"], body["role"], body["model"]) == ("message", "assistant", DEFAULT_MODEL_ID)
    assert body["content"] == [{"type": "text", "text": TEXT}]
    assert (body["stop_reason"], body["stop_sequence"]) == ("end_turn", None)
    assert body["usage"]["output_tokens"] == len(FAKE_PIECES)
    assert {"input_tokens", "cache_read_input_tokens", "cache_creation_input_tokens"} <= set(
        body["usage"]
    )


def test_max_tokens_ends_with_max_tokens(client: TestClient) -> None:
    body = client.post("/v1/messages", json={**BODY, "max_tokens": 2}).json()
    assert body["stop_reason"] == "max_tokens"
    assert body["content"][0]["text"] == "".join(FAKE_PIECES[:2])
    assert body["usage"]["output_tokens"] == 2


def test_stop_sequence_is_named(tmp_path: Path) -> None:
    for client in _client(tmp_path, ScriptedEngine("one two", stop_sequence="three")):
        body = client.post("/v1/messages", json={**BODY, "stop_sequences": ["three"]}).json()
        assert (body["stop_reason"], body["stop_sequence"]) == ("stop_sequence", "three")
        # Cached prompt tokens are Anthropic's cache reads, apart from input_tokens.
        assert body["usage"]["input_tokens"] == 4
        assert body["usage"]["cache_read_input_tokens"] == 3


def test_blocks_become_the_conversation(client: TestClient, fake_engine: FakeEngine) -> None:
    history = [
        {"role": "user", "content": [{"type": "text", "text": "Weather in Paris?"}]},
        {
            "role": "assistant",
            "content": [
                {"type": "thinking", "thinking": "dropped", "signature": "x"},
                {"type": "text", "text": "Let me look."},
                {
                    "type": "tool_use",
                    "id": "toolu_1",
                    "name": "get_weather",
                    "input": {"city": "Paris"},
                },
            ],
        },
        {
            "role": "user",
            "content": [
                {
                    "type": "tool_result",
                    "tool_use_id": "toolu_1",
                    "content": [{"type": "text", "text": "21C"}],
                },
                {"type": "text", "text": "Thanks", "cache_control": {"type": "ephemeral"}},
            ],
        },
        {"role": "system", "content": [{"type": "text", "text": "Env: linux."}]},  # Claude Code
    ]
    system = [{"type": "text", "text": "Be brief."}, {"type": "text", "text": "Be kind."}]
    body = {**BODY, "system": system, "messages": history, "tools": [WEATHER]}
    body["tool_choice"] = {"type": "none"}
    resp = client.post("/v1/messages", json=body)
    assert resp.status_code == 200, resp.text
    sent = fake_engine.submitted[-1]
    assert sent.params.grammar is None  # tool_choice none: plain text
    roles = [m.role for m in sent.messages or ()]
    assert roles == ["system", "user", "assistant", "user", "user"]
    turns = sent.messages or ()
    # `system` and system messages: one leading system turn, as templates expect.
    assert turns[0].content == "Be brief.\n\nBe kind.\n\nEnv: linux."
    assert '"Paris"' in turns[2].content and "dropped" not in turns[2].content
    assert '"tool_response"' in turns[3].content and "21C" in turns[3].content
    assert turns[4].content == "Thanks"


def test_sampling_fields_and_defaults(client: TestClient, fake_engine: FakeEngine) -> None:
    client.post("/v1/messages", json=BODY)
    params = fake_engine.submitted[-1].params
    assert (params.temperature, params.top_p, params.max_tokens) == (1.0, 1.0, 64)
    extra = {"temperature": 0.0, "top_p": 0.5, "top_k": 5, "stop_sequences": ["x", "y"]}
    client.post("/v1/messages", json={**BODY, **extra, "metadata": {"user_id": "u"}})
    params = fake_engine.submitted[-1].params
    assert (params.temperature, params.top_p, params.top_k, params.stop) == (
        0.0,
        0.5,
        5,
        ("x", "y"),
    )


def test_what_claude_code_sends_is_accepted(client: TestClient) -> None:
    body = {
        **BODY,
        "max_tokens": 32000,
        "system": [{"type": "text", "text": "You help.", "cache_control": {"type": "ephemeral"}}],
        "thinking": {"type": "adaptive"},
        "output_config": {"effort": "high"},
        "context_management": {"edits": []},
        "metadata": {"user_id": "someone"},
        "stream": True,
    }
    headers = {"anthropic-version": "2026-10-21", "anthropic-beta": "a-2025,b-2026"}
    resp = client.post("/v1/messages?beta=true", json=body, headers=headers)
    assert resp.status_code == 200, resp.text
    assert _events(resp.text)[-1][0] == "message_stop"


# ---- streams ---------------------------------------------------------------------------
def test_stream_event_sequence(client: TestClient) -> None:
    resp = client.post("/v1/messages", json={**BODY, "stream": True})
    assert resp.status_code == 200
    assert resp.headers["content-type"].startswith("text/event-stream")
    events = _events(resp.text)
    names = [name for name, _ in events]
    deltas = len(FAKE_PIECES)
    assert names == [
        "message_start",
        "ping",
        "content_block_start",
        *["content_block_delta"] * deltas,
        "content_block_stop",
        "message_delta",
        "message_stop",
    ]
    start = events[0][1]["message"]
    assert start["content"] == [] and start["stop_reason"] is None
    assert start["id"].startswith("msg_") and "input_tokens" in start["usage"]
    text = "".join(d["delta"]["text"] for n, d in events if n == "content_block_delta")
    assert text == TEXT
    delta = events[-2][1]
    assert delta["delta"] == {"stop_reason": "end_turn", "stop_sequence": None}
    assert delta["usage"]["output_tokens"] == deltas and "input_tokens" in delta["usage"]


def test_stream_failure_is_an_error_event(tmp_path: Path) -> None:
    for client in _client(tmp_path, FailingEngine(2, InferenceError("decode failed"))):
        events = _events(client.post("/v1/messages", json={**BODY, "stream": True}).text)
        assert events[-1] == (
            "error",
            {"type": "error", "error": {"type": "api_error", "message": "decode failed"}},
        )
        assert "message_stop" not in [n for n, _ in events]


# ---- tools and formats ------------------------------------------------------------------
def test_tool_choice_any_answers_tool_use(scripted: tuple[TestClient, ScriptedEngine]) -> None:
    client, engine = scripted
    body = {**BODY, "tools": [WEATHER], "tool_choice": {"type": "any"}}
    resp = client.post("/v1/messages", json=body)
    assert resp.status_code == 200, resp.text
    grammar = engine.submitted[-1].params.grammar
    assert grammar and "tool_calls" in grammar  # any: a call is the only answer
    message = resp.json()
    assert message["stop_reason"] == "tool_use"
    (block,) = message["content"]
    assert block["type"] == "tool_use" and block["name"] == "get_weather"
    assert block["input"] == {"city": "Paris"}
    assert block["id"].startswith("toolu_")  # Anthropic's form, not OpenAI's call_


def test_tool_use_streams_as_input_json_delta(scripted: tuple[TestClient, ScriptedEngine]) -> None:
    client, _ = scripted
    body = {**BODY, "tools": [WEATHER], "tool_choice": {"type": "any"}, "stream": True}
    events = _events(client.post("/v1/messages", json=body).text)
    starts = [d for n, d in events if n == "content_block_start"]
    assert [s["content_block"]["type"] for s in starts] == ["tool_use"]
    assert starts[0]["content_block"]["input"] == {}
    assert starts[0]["content_block"]["id"].startswith("toolu_")
    partial = "".join(
        d["delta"]["partial_json"]
        for n, d in events
        if n == "content_block_delta" and d["delta"]["type"] == "input_json_delta"
    )
    assert json.loads(partial) == {"city": "Paris"}
    assert next(d for n, d in events if n == "message_delta")["delta"]["stop_reason"] == "tool_use"


def test_named_tool_choice_is_enforced(scripted: tuple[TestClient, ScriptedEngine]) -> None:
    client, engine = scripted
    other = {**WEATHER, "name": "get_time"}
    body = {**BODY, "tools": [WEATHER, other]}
    body["tool_choice"] = {"type": "tool", "name": "get_weather", "disable_parallel_tool_use": True}
    assert client.post("/v1/messages", json=body).status_code == 200
    grammar = engine.submitted[-1].params.grammar or ""
    assert "get_weather" in grammar and "get_time" not in grammar  # only the named one
    body["tool_choice"] = {"type": "tool", "name": "nope"}
    _check_error(client.post("/v1/messages", json=body), 400, "invalid_request_error", "nope")


def test_output_config_format_constrains(client: TestClient, fake_engine: FakeEngine) -> None:
    schema = {"type": "object", "properties": {"n": {"type": "integer"}}, "required": ["n"]}
    fmt = {"format": {"type": "json_schema", "schema": schema}}
    assert client.post("/v1/messages", json={**BODY, "output_config": fmt}).status_code == 200
    assert fake_engine.submitted[-1].params.grammar
    both = {**BODY, "output_config": fmt, "tools": [WEATHER]}
    resp = client.post("/v1/messages", json=both)
    _check_error(resp, 400, "invalid_request_error", "output_config.format")


# ---- count_tokens ------------------------------------------------------------------------
def test_count_tokens(client: TestClient, fake_engine: FakeEngine) -> None:
    def count(body: dict[str, Any]) -> int:
        resp = client.post("/v1/messages/count_tokens", json=body)
        assert resp.status_code == 200, resp.text
        assert set(resp.json()) == {"input_tokens"}
        return int(resp.json()["input_tokens"])

    short = {"model": DEFAULT_MODEL_ID, "messages": [ASK]}
    longer = {**short, "messages": [{"role": "user", "content": "Say hi " * 20}]}
    assert 0 < count(short) < count(longer)
    assert count({**short, "tools": [WEATHER]}) > count(short)  # the tools are prompt text
    assert fake_engine.submitted == []  # counted, never generated
    _check_error(
        client.post("/v1/messages/count_tokens", json={**short, "model": "nope"}),
        404,
        "not_found_error",
    )


def test_count_tokens_loads_a_model_not_loaded_yet(idle_client: TestClient) -> None:
    assert idle_client.get("/api/v1/status").json()["data"]["status"] == "idle"
    short = {"model": DEFAULT_MODEL_ID, "messages": [ASK]}
    resp = idle_client.post("/v1/messages/count_tokens", json=short)
    assert resp.status_code == 200, resp.text
    assert resp.json()["input_tokens"] > 0
    status = idle_client.get("/api/v1/status").json()["data"]
    assert status["model"] == {"id": DEFAULT_MODEL_ID, "loaded": True}
    _check_error(
        idle_client.post("/v1/messages/count_tokens", json={**short, "model": "nope"}),
        404,
        "not_found_error",
        "nope",
    )


def test_max_tokens_zero_counts_and_generates_nothing(
    client: TestClient, fake_engine: FakeEngine
) -> None:
    short = {k: v for k, v in BODY.items() if k != "max_tokens"}
    counted = client.post("/v1/messages/count_tokens", json=short)
    body = client.post("/v1/messages", json={**BODY, "max_tokens": 0}).json()
    assert body["content"] == [] and body["stop_reason"] == "max_tokens"
    assert body["usage"]["input_tokens"] == counted.json()["input_tokens"]
    assert body["usage"]["output_tokens"] == 0
    events = _events(
        client.post("/v1/messages", json={**BODY, "max_tokens": 0, "stream": True}).text
    )
    assert [n for n, _ in events] == ["message_start", "message_delta", "message_stop"]
    assert fake_engine.submitted == []  # nothing generated


# ---- errors ------------------------------------------------------------------------------
BAD = [
    ({k: v for k, v in BODY.items() if k != "max_tokens"}, "max_tokens"),
    ({**BODY, "max_tokens": -1}, "max_tokens"),
    ({**BODY, "surprise": 1}, "surprise"),
    ({**BODY, "messages": []}, "messages"),
    (
        {**BODY, "messages": [{"role": "user", "content": [{"type": "image", "source": {}}]}]},
        "messages.0.content.0: image blocks",
    ),
    ({**BODY, "messages": [ASK, {"role": "assistant", "content": "Sure"}]}, "prefill"),
    ({**BODY, "messages": [{"role": "system", "content": "Only this"}]}, "user message"),
    ({**BODY, "tools": [{"type": "web_search_20250305", "name": "web_search"}]}, "tools.0"),
    ({**BODY, "tool_choice": {"type": "any"}}, "tool_choice"),
    ({**BODY, "temperature": 1.5}, "temperature"),
    ({**BODY, "mcp_servers": [{"url": "x"}]}, "mcp_servers"),
]


@pytest.mark.parametrize(("body", "mentions"), BAD)
def test_bad_bodies_are_invalid_request_errors(
    client: TestClient, body: dict[str, Any], mentions: str
) -> None:
    _check_error(client.post("/v1/messages", json=body), 400, "invalid_request_error", mentions)


def test_a_bad_block_is_named_by_its_path(client: TestClient) -> None:
    blocks = [{"type": "text", "text": "ok"}, {"type": "tool_use", "id": "t", "name": "f"}]
    body = {**BODY, "messages": [{"role": "assistant", "content": blocks}, ASK]}
    resp = client.post("/v1/messages", json=body)
    _check_error(resp, 400, "invalid_request_error", "messages.0.content.1")
    # Not pydantic's names for the union members it tried.
    assert "[" not in resp.json()["error"]["message"].split(":")[0]


def test_not_json_and_unknown_paths(client: TestClient) -> None:
    resp = client.post("/v1/messages", content=b"{", headers={"content-type": "application/json"})
    _check_error(resp, 400, "invalid_request_error")
    _check_error(client.post("/v1/messages/nope", json=BODY), 404, "not_found_error")
    _check_error(
        client.post("/v1/messages", json={**BODY, "model": "claude-x"}), 404, "not_found_error"
    )
    # The OpenAI routes beside it keep OpenAI's shape.
    assert "param" in client.post("/v1/chat/completions", json={}).json()["error"]


def test_x_api_key(tmp_path: Path) -> None:
    for client in _client(tmp_path, FakeEngine(), api_key="sekret"):
        _check_error(client.post("/v1/messages", json=BODY), 401, "authentication_error")
        resp = client.post(
            "/v1/messages",
            json=BODY,
            headers={"x-api-key": "sekret", "anthropic-version": "2023-06-01"},
        )
        assert resp.status_code == 200, resp.text


def test_a_body_too_large_is_request_too_large(tmp_path: Path) -> None:
    for client in _client(tmp_path, FakeEngine(), max_body_bytes=2048):
        big = {**BODY, "messages": [{"role": "user", "content": "x" * 4096}]}
        _check_error(client.post("/v1/messages", json=big), 413, "request_too_large")


def test_a_full_queue_is_529_overloaded(tmp_path: Path) -> None:
    for client in _client(tmp_path, StallingEngine(), max_queue=0, parallel=1):
        streamed = {**BODY, "stream": True}
        with client.stream("POST", "/v1/messages", json=streamed) as first:
            assert first.status_code == 200
            resp = client.post("/v1/messages", json=streamed)
            _check_error(resp, 529, "overloaded_error")  # Anthropic's SDKs retry it
            assert resp.headers["retry-after"]


def test_rate_limit_counts_messages_as_generations(tmp_path: Path) -> None:
    for client in _client(tmp_path, FakeEngine(), rate_limit_generate=1):
        assert client.post("/v1/messages", json=BODY).status_code == 200
        resp = client.post("/v1/messages", json=BODY)
        _check_error(resp, 429, "rate_limit_error")
        assert int(resp.headers["retry-after"]) >= 1


def test_error_table_in_anthropic_words() -> None:
    assert anthropic_status("OVERLOADED") == 529
    assert anthropic_error("OVERLOADED", "busy")["error"]["type"] == "overloaded_error"
    assert anthropic_error("RATE_LIMIT", "slow")["error"]["type"] == "rate_limit_error"
    assert anthropic_error("PAYLOAD_TOO_LARGE", "big")["error"]["type"] == "request_too_large"
    assert anthropic_error("INTERNAL_ERROR", "x")["error"]["type"] == "api_error"
    too_long = ValidationError(
        "prompt is 9 tokens", {"prompt_tokens": 9000, "context_length": 8192}
    )
    error = anthropic_error_of(too_long)["error"]
    # Anthropic's own wording, which Claude Code recognises.
    assert error == {
        "type": "invalid_request_error",
        "message": "prompt is too long: 9000 tokens > 8191 maximum",
    }
