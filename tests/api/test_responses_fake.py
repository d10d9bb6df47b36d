"""/v1/responses shapes on the fake engine: the response object, the typed event stream,
the store (retrieve, delete, input_items, previous_response_id), tools and bad input."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from browser_llm.api.app import create_app
from browser_llm.config import Settings
from tests import fakes
from tests.api.conftest import LOCAL
from tests.api.failing_engine import FailingEngine
from tests.fakes import FAKE_PIECES, FakeEngine

TEXT = "".join(FAKE_PIECES)
WEATHER = {
    "type": "function",
    "name": "get_weather",
    "description": "Weather in a city",
    "parameters": {
        "type": "object",
        "properties": {"city": {"type": "string"}},
        "required": ["city"],
    },
}


def _events(body: str) -> list[dict[str, Any]]:
    """The stream's events; each `event:` line must name its data's type."""
    events = []
    for block in body.strip().split("\n\n"):
        lines = dict(line.split(": ", 1) for line in block.split("\n"))
        data = json.loads(lines["data"])
        assert lines["event"] == data["type"]
        events.append(data)
    return events


def _stored_count(client: TestClient) -> int:
    return int(client.app.state.services.responses.count())  # type: ignore[attr-defined]


def test_response_object_shape(client: TestClient) -> None:
    resp = client.post("/v1/responses", json={"input": "hi", "instructions": "be brief"})
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert body["id"].startswith("resp_") and body["object"] == "response"
    assert body["status"] == "completed" and body["incomplete_details"] is None
    assert isinstance(body["created_at"], int) and body["model"]
    assert body["instructions"] == "be brief" and body["store"] is True
    [message] = body["output"]
    assert message["type"] == "message" and message["role"] == "assistant"
    assert message["status"] == "completed" and message["id"].startswith("msg_")
    assert message["content"] == [
        {"type": "output_text", "text": TEXT, "annotations": [], "logprobs": []}
    ]
    usage = body["usage"]
    assert usage["output_tokens"] == len(FAKE_PIECES)
    assert usage["total_tokens"] == usage["input_tokens"] + usage["output_tokens"]
    assert usage["input_tokens_details"] == {"cached_tokens": 0}
    assert usage["output_tokens_details"] == {"reasoning_tokens": 0}


def test_instructions_and_input_reach_the_engine(
    client: TestClient, fake_engine: FakeEngine
) -> None:
    client.post(
        "/v1/responses",
        json={
            "instructions": "be brief",
            "input": [
                {"role": "developer", "content": "dev note"},
                {
                    "type": "message",
                    "role": "user",
                    "content": [{"type": "input_text", "text": "q"}],
                },
            ],
            "max_output_tokens": 3,
            "temperature": 0.5,
            "top_p": 0.9,
        },
    )
    request = fake_engine.submitted[-1]
    assert request.messages is not None
    assert [(m.role, m.content) for m in request.messages] == [
        ("system", "be brief"),
        ("system", "dev note"),
        ("user", "q"),
    ]
    assert request.params.max_tokens == 3
    assert request.params.temperature == 0.5 and request.params.top_p == 0.9


def test_max_output_tokens_cut_is_incomplete(client: TestClient) -> None:
    body = client.post("/v1/responses", json={"input": "hi", "max_output_tokens": 2}).json()
    assert body["status"] == "incomplete"
    assert body["incomplete_details"] == {"reason": "max_output_tokens"}
    assert body["output"][0]["status"] == "incomplete"
    assert body["output"][0]["content"][0]["text"] == "".join(FAKE_PIECES[:2])


def test_stream_event_sequence(client: TestClient) -> None:
    resp = client.post("/v1/responses", json={"input": "hi", "stream": True})
    assert resp.status_code == 200
    assert resp.headers["content-type"].startswith("text/event-stream")
    events = _events(resp.text)
    assert [e["sequence_number"] for e in events] == list(range(len(events)))
    kinds = [e["type"] for e in events]
    deltas = len(FAKE_PIECES)
    assert kinds == [
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        "response.content_part.added",
        *["response.output_text.delta"] * deltas,
        "response.output_text.done",
        "response.content_part.done",
        "response.output_item.done",
        "response.completed",
    ]
    created = events[0]["response"]
    assert created["status"] == "in_progress" and created["output"] == []
    assert isinstance(created["created_at"], int) and created["model"]
    for event in events[2:-1]:
        assert event["output_index"] == 0
        if "content_index" in event or event["type"].startswith("response.output_text"):
            assert event["content_index"] == 0
    assert "".join(e["delta"] for e in events if "delta" in e) == TEXT
    final = events[-1]["response"]
    assert final["id"] == created["id"] and final["status"] == "completed"
    assert final["output"][0]["content"][0]["text"] == TEXT
    assert final["usage"]["output_tokens"] == deltas
    # The streamed response was stored as it ended.
    assert client.get(f"/v1/responses/{final['id']}").json() == final


def test_streamed_cut_ends_with_response_incomplete(client: TestClient) -> None:
    resp = client.post(
        "/v1/responses", json={"input": "hi", "stream": True, "max_output_tokens": 1}
    )
    last = _events(resp.text)[-1]
    assert last["type"] == "response.incomplete"
    assert last["response"]["incomplete_details"] == {"reason": "max_output_tokens"}


def test_retrieve_input_items_delete(client: TestClient) -> None:
    first = client.post(
        "/v1/responses",
        json={"input": [{"role": "user", "content": "a"}, {"role": "user", "content": "b"}]},
    ).json()
    rid = first["id"]
    assert client.get(f"/v1/responses/{rid}").json() == first
    items = client.get(f"/v1/responses/{rid}/input_items").json()
    assert items["object"] == "list" and items["has_more"] is False
    texts = [i["content"][0]["text"] for i in items["data"]]
    assert texts == ["b", "a"]  # newest first, as OpenAI's default order
    asc = client.get(f"/v1/responses/{rid}/input_items", params={"order": "asc", "limit": 1})
    assert asc.json()["has_more"] is True
    assert asc.json()["data"][0]["content"][0]["text"] == "a"
    after = client.get(
        f"/v1/responses/{rid}/input_items",
        params={"order": "asc", "after": asc.json()["last_id"]},
    ).json()
    assert [i["content"][0]["text"] for i in after["data"]] == ["b"]
    deleted = client.delete(f"/v1/responses/{rid}")
    assert deleted.json() == {"id": rid, "object": "response.deleted", "deleted": True}
    for resp in (
        client.get(f"/v1/responses/{rid}"),
        client.get(f"/v1/responses/{rid}/input_items"),
        client.delete(f"/v1/responses/{rid}"),
    ):
        assert resp.status_code == 404
        assert resp.json()["error"]["type"] == "not_found_error"


def test_previous_response_id_continues_the_conversation(
    client: TestClient, fake_engine: FakeEngine
) -> None:
    first = client.post("/v1/responses", json={"input": "one", "instructions": "sys"}).json()
    second = client.post(
        "/v1/responses", json={"input": "two", "previous_response_id": first["id"]}
    ).json()
    assert second["previous_response_id"] == first["id"]
    client.post("/v1/responses", json={"input": "three", "previous_response_id": second["id"]})
    messages = fake_engine.submitted[-1].messages
    assert messages is not None
    # Instructions are not carried over (OpenAI's rule); every turn before is.
    assert [(m.role, m.content) for m in messages] == [
        ("user", "one"),
        ("assistant", TEXT),
        ("user", "two"),
        ("assistant", TEXT),
        ("user", "three"),
    ]


def test_unknown_previous_response_is_a_404_and_stores_nothing(client: TestClient) -> None:
    before = _stored_count(client)
    resp = client.post("/v1/responses", json={"input": "x", "previous_response_id": "resp_no"})
    assert resp.status_code == 404
    assert resp.json()["error"]["param"] == "previous_response_id"
    assert _stored_count(client) == before


def test_store_false_keeps_nothing(client: TestClient) -> None:
    body = client.post("/v1/responses", json={"input": "x", "store": False}).json()
    assert body["store"] is False
    assert client.get(f"/v1/responses/{body['id']}").status_code == 404


def test_tools_the_server_cannot_run_are_left_out(
    client: TestClient, fake_engine: FakeEngine
) -> None:
    tools = [
        {"type": "web_search"},
        {"type": "namespace", "name": "mcp__x", "tools": [{"type": "function", "name": "y"}]},
        {"type": "file_search", "vector_store_ids": ["vs_1"]},
        WEATHER,
    ]
    resp = client.post("/v1/responses", json={"input": "x", "tools": tools, "tool_choice": "auto"})
    assert resp.status_code == 200, resp.text
    assert resp.json()["tools"][0] == {"type": "web_search"}  # echoed as sent
    messages = fake_engine.submitted[-1].messages
    assert messages is not None
    prompt = " ".join(m.content for m in messages)
    assert "get_weather" in prompt
    assert "web_search" not in prompt and "vs_1" not in prompt and "mcp__x" not in prompt


@pytest.mark.parametrize("kind", ["web_search_preview", "file_search", "mcp", "computer_use"])
def test_tool_choice_naming_a_hosted_tool_is_a_400(client: TestClient, kind: str) -> None:
    resp = client.post(
        "/v1/responses",
        json={"input": "x", "tools": [{"type": kind}, WEATHER], "tool_choice": {"type": kind}},
    )
    assert resp.status_code == 400
    error = resp.json()["error"]
    assert error["param"] == "tool_choice" and kind in error["message"]


def _tool_call_pieces(monkeypatch: pytest.MonkeyPatch) -> None:
    call = '{"tool_calls": [{"name": "get_weather", "arguments": {"city": "Paris"}}]}'
    monkeypatch.setattr(fakes, "FAKE_PIECES", (call[:20], call[20:]))


def test_function_call_round_trip(
    client: TestClient, fake_engine: FakeEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    _tool_call_pieces(monkeypatch)
    body = client.post(
        "/v1/responses", json={"input": "weather?", "tools": [WEATHER], "tool_choice": "required"}
    ).json()
    [call] = body["output"]
    assert call["type"] == "function_call" and call["status"] == "completed"
    assert call["name"] == "get_weather" and json.loads(call["arguments"]) == {"city": "Paris"}
    assert call["id"].startswith("fc_") and call["call_id"]
    monkeypatch.setattr(fakes, "FAKE_PIECES", FAKE_PIECES)
    follow = client.post(
        "/v1/responses",
        json={
            "previous_response_id": body["id"],
            "input": [
                {"type": "function_call_output", "call_id": call["call_id"], "output": "sunny"}
            ],
            "tools": [WEATHER],
        },
    )
    assert follow.status_code == 200, follow.text
    messages = fake_engine.submitted[-1].messages
    assert messages is not None
    assert "sunny" in messages[-1].content and "get_weather" in messages[-2].content


def test_streamed_function_call_events(client: TestClient, monkeypatch: pytest.MonkeyPatch) -> None:
    _tool_call_pieces(monkeypatch)
    resp = client.post(
        "/v1/responses",
        json={"input": "w", "tools": [WEATHER], "tool_choice": "required", "stream": True},
    )
    events = _events(resp.text)
    kinds = [e["type"] for e in events]
    assert kinds[0:2] == ["response.created", "response.in_progress"]
    assert kinds[2] == "response.output_item.added" and events[2]["item"]["arguments"] == ""
    assert "response.function_call_arguments.delta" in kinds
    done = next(e for e in events if e["type"] == "response.function_call_arguments.done")
    assert json.loads(done["arguments"]) == {"city": "Paris"} and done["output_index"] == 0
    assert kinds[-2:] == ["response.output_item.done", "response.completed"]
    streamed = "".join(e["delta"] for e in events if e["type"].endswith("arguments.delta"))
    assert streamed == done["arguments"]


def test_text_format_json_schema_sets_a_grammar(
    client: TestClient, fake_engine: FakeEngine
) -> None:
    schema = {"type": "object", "properties": {"a": {"type": "integer"}}, "required": ["a"]}
    text = {"format": {"type": "json_schema", "name": "thing", "schema": schema, "strict": True}}
    resp = client.post("/v1/responses", json={"input": "x", "text": text})
    assert resp.status_code == 200, resp.text
    assert fake_engine.submitted[-1].params.grammar
    assert resp.json()["text"]["format"]["name"] == "thing"
    client.post("/v1/responses", json={"input": "x", "text": {"format": {"type": "json_object"}}})
    assert fake_engine.submitted[-1].params.grammar


@pytest.mark.parametrize(
    ("body", "param"),
    [
        (
            {"input": "x", "text": {"format": {"type": "json_schema", "schema": {"type": 3}}}},
            "text.format",
        ),
        (
            {"input": [{"role": "user", "content": [{"type": "input_image", "image_url": "u"}]}]},
            "input.0.content.0",
        ),
        ({"input": "x", "background": True}, "background"),
        ({"input": "x", "conversation": "conv_1"}, "conversation"),
        ({"input": "x", "truncation": "auto"}, "truncation"),
        ({"input": "x", "made_up_field": 1}, "made_up_field"),
        ({"input": ""}, "input"),
        ({"input": [{"type": "item_reference", "id": "x"}]}, "input.0"),
        ({"input": "x", "tool_choice": "required"}, "tool_choice"),
        (
            {"input": "x", "tools": [WEATHER], "tool_choice": {"type": "function", "name": "nope"}},
            "tool_choice",
        ),
        (
            {"input": "x", "tools": [WEATHER], "text": {"format": {"type": "json_object"}}},
            "text.format",
        ),
        ({"input": "x", "model": "no-such-model"}, None),
    ],
)
def test_bad_input_is_a_4xx_in_openai_shape_and_stores_nothing(
    client: TestClient, body: dict[str, Any], param: str | None
) -> None:
    before = _stored_count(client)
    resp = client.post("/v1/responses", json=body)
    assert 400 <= resp.status_code < 500, resp.text
    error = resp.json()["error"]
    assert error["message"] and error["type"] in ("invalid_request_error", "not_found_error")
    if param is not None:
        assert error["param"] == param
    assert _stored_count(client) == before


@pytest.fixture
def failing_client(tmp_path: Path) -> Iterator[TestClient]:
    settings = Settings(models_dir=tmp_path / "models", data_dir=tmp_path / "data")
    with TestClient(create_app(settings, engine=FailingEngine(tokens=2)), base_url=LOCAL) as c:
        yield c


def test_a_failure_mid_stream_is_response_failed_and_nothing_stored(
    failing_client: TestClient,
) -> None:
    resp = failing_client.post("/v1/responses", json={"input": "x", "stream": True})
    events = _events(resp.text)
    assert events[-1]["type"] == "response.failed"
    failed = events[-1]["response"]
    assert failed["status"] == "failed" and failed["error"]["message"]
    assert failing_client.get(f"/v1/responses/{failed['id']}").status_code == 404


def test_a_codex_shaped_body_is_accepted(client: TestClient, fake_engine: FakeEngine) -> None:
    """The fields Codex CLI 0.171 sends on every turn (recorded from its own request)."""
    body = {
        "model": "",
        "input": [
            {
                "type": "message",
                "role": "developer",
                "content": [{"type": "input_text", "text": "d"}],
            },
            {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "hi"}]},
        ],
        "tools": [
            {**WEATHER, "name": "exec_command", "strict": False},
            {"type": "namespace", "name": "multi_agent_v1", "description": "x", "tools": []},
            {"type": "web_search", "external_web_access": False},
        ],
        "tool_choice": "auto",
        "parallel_tool_calls": True,
        "reasoning": {"summary": "auto"},
        "store": False,
        "stream": True,
        "include": ["reasoning.encrypted_content"],
        "prompt_cache_key": "0199-session",
        "client_metadata": {"session_id": "0199-session", "turn_id": "0199-turn"},
    }
    resp = client.post("/v1/responses", json=body)
    assert resp.status_code == 200, resp.text
    assert _events(resp.text)[-1]["type"] == "response.completed"
    assert _stored_count(client) == 0


def test_codex_harness_outputs_without_a_call_id_are_accepted(
    client: TestClient, fake_engine: FakeEngine
) -> None:
    """Codex CLI 0.171's second turn (recorded): after its calls' results it sends one result
    no call asked for, its harness's goal, with a name and a namespace and no call_id."""
    call = {"type": "function_call", "call_id": "call_1", "name": "create_goal", "arguments": "{}"}
    body = {
        "input": [
            {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "hi"}]},
            {**call, "status": "completed", "id": "fc_1"},
            {"type": "function_call_output", "id": "fco_1", "call_id": "call_1", "output": "ok"},
            {
                "type": "function_call_output",
                "id": "fco_2",
                "name": "goal_objective",
                "namespace": "agent",
                "output": "Say hi",
            },
        ],
        "tools": [{**WEATHER, "name": "create_goal"}],
        "store": False,
    }
    resp = client.post("/v1/responses", json=body)
    assert resp.status_code == 200, resp.text
    messages = fake_engine.submitted[-1].messages
    assert messages is not None
    assert "Say hi" in messages[-1].content and "agent.goal_objective" in messages[-1].content


def test_a_tool_result_naming_neither_call_nor_tool_is_a_400(client: TestClient) -> None:
    output = {"type": "function_call_output", "output": "x"}
    resp = client.post("/v1/responses", json={"input": [output]})
    assert resp.status_code == 400, resp.text
    error = resp.json()["error"]
    assert error["param"] == "input.0.function_call_output" and "call_id" in error["message"]


def test_retention_settings_bound_the_store(tmp_path: Path) -> None:
    settings = Settings(
        models_dir=tmp_path / "models", data_dir=tmp_path / "data", responses_max_count=2
    )
    with TestClient(create_app(settings, engine=FakeEngine()), base_url=LOCAL) as c:
        ids = [c.post("/v1/responses", json={"input": f"n{n}"}).json()["id"] for n in range(3)]
        assert c.get(f"/v1/responses/{ids[0]}").status_code == 404
        assert all(c.get(f"/v1/responses/{rid}").status_code == 200 for rid in ids[1:])
    assert (tmp_path / "data" / "responses.sqlite3").exists()


def test_creating_a_response_counts_as_a_generate_call() -> None:
    from browser_llm.api.ratelimit import bucket_for

    assert bucket_for("POST", "/v1/responses") == "generate"
    assert bucket_for("GET", "/v1/responses/resp_1") == "other"
    assert bucket_for("DELETE", "/v1/responses/resp_1") == "other"
