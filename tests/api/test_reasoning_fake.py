"""A thinking model's reasoning in each dialect's own field, streamed and whole, with the
fake engine: the model's template is taken as a thinking one (service/thinking/plan.py is
tested on real templates in tests/unit/test_thinking.py), the output scripted."""

from __future__ import annotations

import json
from typing import Any

import openai
import pytest
from fastapi.testclient import TestClient

from browser_llm.core.types import ChatMessage
from browser_llm.service.thinking.plan import Thinking
from browser_llm.service.thinking.split import ThinkMarkers
from tests.api.conftest import LOCAL
from tests.fakes import FakeEngine

# The prompt opened the block: the output starts inside the reasoning.
INSIDE = ("\nLet", " me", " think", " </th", "ink>", "\n\n", "Hello", " there")
# The model opens the block itself.
OPENED = ("<th", "ink>", "Let me", " think", "</think>", "Hello", " there")
REASONING, ANSWER = "Let me think", "Hello there"
OFF = (("enable_thinking", False),)


@pytest.fixture(params=["inside", "opened"])
def thinking(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> tuple[str, ...]:
    inside = request.param == "inside"
    pieces = INSIDE if inside else OPENED
    think = Thinking(ThinkMarkers("<think>", "</think>"), inside, "enable_thinking")
    monkeypatch.setattr("browser_llm.service.prepare.thinking_for", lambda *_: think)
    monkeypatch.setattr("tests.fakes.FAKE_PIECES", pieces)
    return pieces


def _sse(text: str) -> list[Any]:
    datas = [line[6:] for line in text.splitlines() if line.startswith("data: ")]
    return [json.loads(d) for d in datas if d != "[DONE]"]


CHAT = {"messages": [{"role": "user", "content": "hi"}], "max_tokens": 50}


def test_openai_whole(client: TestClient, thinking: tuple[str, ...]) -> None:
    body = client.post("/v1/chat/completions", json=CHAT).json()
    message = body["choices"][0]["message"]
    assert message["content"] == ANSWER
    assert message["reasoning_content"] == message["reasoning"] == REASONING
    assert body["usage"]["completion_tokens"] == len(thinking)  # reasoning counted
    details = body["usage"]["completion_tokens_details"]
    assert details["reasoning_tokens"] == _reasoning_pieces(thinking)


def _reasoning_pieces(pieces: tuple[str, ...]) -> int:
    """The pieces (one per token) up to the one that ends `</think>`."""
    return next(i for i, p in enumerate(pieces) if p.endswith("ink>") and i > 1) + 1


def test_openai_streamed(client: TestClient, thinking: tuple[str, ...]) -> None:
    body = {**CHAT, "stream": True, "stream_options": {"include_usage": True}}
    chunks = _sse(client.post("/v1/chat/completions", json=body).text)
    deltas = [c["choices"][0]["delta"] for c in chunks if c["choices"]]
    reasoning = "".join(d.get("reasoning_content") or "" for d in deltas)
    assert reasoning == "".join(d.get("reasoning") or "" for d in deltas) == REASONING
    assert "".join(d.get("content") or "" for d in deltas) == ANSWER
    first_text = next(i for i, d in enumerate(deltas) if d.get("content"))
    assert all("reasoning_content" not in d for d in deltas[first_text:])
    assert chunks[-1]["usage"]["completion_tokens"] == len(thinking)
    reasoning_tokens = chunks[-1]["usage"]["completion_tokens_details"]["reasoning_tokens"]
    assert reasoning_tokens == _reasoning_pieces(thinking)


def test_openai_reasoning_effort_none_sets_the_template_switch(
    client: TestClient, fake_engine: FakeEngine, thinking: tuple[str, ...]
) -> None:
    body = client.post("/v1/chat/completions", json={**CHAT, "reasoning_effort": "none"}).json()
    assert fake_engine.submitted[-1].template_vars == OFF
    message = body["choices"][0]["message"]
    if thinking is INSIDE:  # the prompt no longer opens the block: all of it is answer
        assert message["content"] == "".join(INSIDE)
        assert "reasoning_content" not in message
    else:  # a model that opens it anyway is still split
        assert (message["content"], message["reasoning"]) == (ANSWER, REASONING)


def test_a_grammar_means_no_thinking(
    client: TestClient, fake_engine: FakeEngine, thinking: tuple[str, ...]
) -> None:
    body = {**CHAT, "response_format": {"type": "json_object"}}
    message = client.post("/v1/chat/completions", json=body).json()["choices"][0]["message"]
    assert fake_engine.submitted[-1].template_vars == OFF
    assert fake_engine.submitted[-1].params.grammar is not None
    assert "reasoning_content" not in message
    assert message["content"] == "".join(thinking)  # not split


def test_ollama_chat_and_generate(
    client: TestClient, fake_engine: FakeEngine, thinking: tuple[str, ...]
) -> None:
    chat = {"model": "x", "messages": CHAT["messages"], "stream": False}
    name = client.get("/api/tags").json()["models"][0]["name"]
    chat["model"] = name
    message = client.post("/api/chat", json=chat).json()["message"]
    assert (message["thinking"], message["content"]) == (REASONING, ANSWER)
    lines = [
        json.loads(x)
        for x in client.post("/api/chat", json={**chat, "stream": True}).text.split("\n")
        if x
    ]
    assert "".join(x["message"].get("thinking", "") for x in lines) == REASONING
    assert "".join(x["message"]["content"] for x in lines) == ANSWER
    assert lines[-1]["eval_count"] == len(thinking)
    gen = {"model": name, "prompt": "hi", "stream": False}
    whole = client.post("/api/generate", json=gen).json()
    assert (whole["thinking"], whole["response"]) == (REASONING, ANSWER)
    streamed = client.post("/api/generate", json={**gen, "stream": True}).text.split("\n")
    parts = [json.loads(x) for x in streamed if x]
    assert "".join(x.get("thinking", "") for x in parts) == REASONING
    assert "".join(x["response"] for x in parts) == ANSWER
    client.post("/api/chat", json={**chat, "think": False})
    assert fake_engine.submitted[-1].template_vars == OFF
    client.post("/api/chat", json={**chat, "think": True})
    assert fake_engine.submitted[-1].template_vars == ()


def test_ollama_raw_prompts_are_not_split(client: TestClient, thinking: tuple[str, ...]) -> None:
    name = client.get("/api/tags").json()["models"][0]["name"]
    gen = {"model": name, "prompt": "hi", "stream": False, "raw": True}
    whole = client.post("/api/generate", json=gen).json()
    assert "thinking" not in whole
    assert whole["response"] == "".join(thinking)


def test_anthropic_whole_and_streamed(
    client: TestClient, fake_engine: FakeEngine, thinking: tuple[str, ...]
) -> None:
    body = {"model": "x", "max_tokens": 50, "messages": CHAT["messages"]}
    body["model"] = client.get("/v1/models").json()["data"][0]["id"]
    whole = client.post("/v1/messages", json=body).json()
    assert [b["type"] for b in whole["content"]] == ["thinking", "text"]
    assert (whole["content"][0]["thinking"], whole["content"][1]["text"]) == (REASONING, ANSWER)
    assert whole["usage"]["output_tokens"] == len(thinking)
    events = _sse(client.post("/v1/messages", json={**body, "stream": True}).text)
    kinds = [e["type"] for e in events]
    starts = [e["content_block"]["type"] for e in events if e["type"] == "content_block_start"]
    assert starts == ["thinking", "text"]
    deltas = [e for e in events if e["type"] == "content_block_delta"]
    think = "".join(e["delta"].get("thinking", "") for e in deltas if e["index"] == 0)
    text = "".join(e["delta"]["text"] for e in deltas if e["index"] == 1)
    assert (think, text) == (REASONING, ANSWER)
    # Its signature last, as Anthropic streams it (the SDK's accumulator sets it).
    kinds_0 = [e["delta"]["type"] for e in deltas if e["index"] == 0]
    assert set(kinds_0[:-1]) == {"thinking_delta"} and kinds_0[-1] == "signature_delta"
    assert kinds.count("content_block_stop") == 2 and kinds[-1] == "message_stop"
    client.post("/v1/messages", json={**body, "thinking": {"type": "disabled"}})
    assert fake_engine.submitted[-1].template_vars == OFF


def test_seed_api(client: TestClient, thinking: tuple[str, ...]) -> None:
    body = {"prompt": "hi", "max_tokens": 50}
    whole = client.post("/api/v1/generate", json=body).json()
    whole = whole.get("data", whole)
    assert (whole["reasoning"], whole["text"]) == (REASONING, ANSWER)
    events = _sse(client.post("/api/v1/generate", json={**body, "stream": True}).text)
    assert "".join(e["data"]["reasoning"] for e in events if e["type"] == "reasoning") == REASONING
    assert "".join(e["data"]["token"] for e in events if e["type"] == "token") == ANSWER
    done = events[-1]["data"]["completion"]
    assert (done["reasoning"], done["text"], done["tokens"]) == (REASONING, ANSWER, len(thinking))


def test_a_model_without_markers_is_unchanged(client: TestClient) -> None:
    body = client.post("/v1/chat/completions", json=CHAT).json()
    assert "reasoning_content" not in body["choices"][0]["message"]
    assert body["usage"]["completion_tokens_details"] == {"reasoning_tokens": 0}


def _responses_body(client: TestClient, **extra: Any) -> dict[str, Any]:
    model = client.get("/v1/models").json()["data"][0]["id"]
    return {"model": model, "input": "hi", "store": False, **extra}


def test_responses_reasoning_item_before_the_message(
    client: TestClient, thinking: tuple[str, ...]
) -> None:
    whole = client.post("/v1/responses", json=_responses_body(client)).json()
    reasoning, message = whole["output"]
    assert (reasoning["type"], message["type"]) == ("reasoning", "message")
    assert reasoning["id"].startswith("rs_") and reasoning["summary"] == []
    assert reasoning["content"] == [{"type": "reasoning_text", "text": REASONING}]
    assert [p["text"] for p in message["content"]] == [ANSWER]
    usage = whole["usage"]
    assert usage["output_tokens"] == len(thinking)
    # The pieces (one per token) up to the one that ends `</think>`.
    closing = next(i for i, p in enumerate(thinking) if p.endswith("ink>") and i > 1)
    assert usage["output_tokens_details"]["reasoning_tokens"] == closing + 1


def test_responses_reasoning_streams_in_its_own_item(
    client: TestClient, thinking: tuple[str, ...]
) -> None:
    events = _sse(client.post("/v1/responses", json=_responses_body(client, stream=True)).text)
    kinds = [e["type"] for e in events]
    assert [e["sequence_number"] for e in events] == list(range(len(events)))
    added = [
        (e["output_index"], e["item"]["type"])
        for e in events
        if "item" in e and e["type"] == "response.output_item.added"
    ]
    assert added == [(0, "reasoning"), (1, "message")]
    done = [
        (e["output_index"], e["item"]["type"])
        for e in events
        if "item" in e and e["type"] == "response.output_item.done"
    ]
    assert done == [(0, "reasoning"), (1, "message")]
    think = [e for e in events if e["type"] == "response.reasoning_text.delta"]
    assert "".join(e["delta"] for e in think) == REASONING
    assert {(e["output_index"], e["content_index"]) for e in think} == {(0, 0)}
    text = [e for e in events if e["type"] == "response.output_text.delta"]
    assert "".join(e["delta"] for e in text) == ANSWER
    assert {e["output_index"] for e in text} == {1}
    # The reasoning item ends before the message begins.
    assert kinds.index("response.reasoning_text.done") < kinds.index("response.output_text.delta")
    final = events[-1]["response"]
    assert final["status"] == "completed"
    assert [i["type"] for i in final["output"]] == ["reasoning", "message"]
    assert final["output"][0]["content"][0]["text"] == REASONING
    assert final["usage"]["output_tokens_details"]["reasoning_tokens"] > 0


def test_responses_sdk_accumulates_the_reasoning(
    client: TestClient, thinking: tuple[str, ...]
) -> None:
    sdk = openai.OpenAI(base_url=f"{LOCAL}/v1", api_key="unused", http_client=client)
    body = _responses_body(client)
    with sdk.responses.stream(model=body["model"], input="hi", store=False) as stream:
        final = stream.get_final_response()
    reasoning = final.output[0]
    assert reasoning.type == "reasoning" and reasoning.content is not None
    assert reasoning.content[0].text == REASONING
    assert final.output_text == ANSWER
    assert final.usage is not None and final.usage.output_tokens_details.reasoning_tokens > 0


def test_responses_reasoning_effort_none_sets_the_template_switch(
    client: TestClient, fake_engine: FakeEngine, thinking: tuple[str, ...]
) -> None:
    client.post("/v1/responses", json=_responses_body(client, reasoning={"effort": "none"}))
    assert fake_engine.submitted[-1].template_vars == OFF
    client.post("/v1/responses", json=_responses_body(client, reasoning={"summary": "auto"}))
    assert fake_engine.submitted[-1].template_vars == ()


def test_responses_without_markers_is_unchanged(client: TestClient) -> None:
    whole = client.post("/v1/responses", json=_responses_body(client)).json()
    assert [i["type"] for i in whole["output"]] == ["message"]
    assert whole["usage"]["output_tokens_details"]["reasoning_tokens"] == 0
    events = _sse(client.post("/v1/responses", json=_responses_body(client, stream=True)).text)
    assert "response.reasoning_text.delta" not in [e["type"] for e in events]
    assert {e["output_index"] for e in events if "output_index" in e} == {0}


# ---- reasoning sent back in the history ------------------------------------------------
def _assistant(fake_engine: FakeEngine) -> list[ChatMessage]:
    messages = fake_engine.submitted[-1].messages or ()
    return [m for m in messages if m.role == "assistant"]


def test_responses_reasoning_items_go_with_the_assistant_turn(
    client: TestClient, fake_engine: FakeEngine, thinking: tuple[str, ...]
) -> None:
    thought = {"type": "reasoning", "summary": [], "encrypted_content": "opaque"}
    items = [
        {"role": "user", "content": "What is 2+2?"},
        {**thought, "content": [{"type": "reasoning_text", "text": "2+2 is 4."}]},
        {"role": "assistant", "content": "4"},
        {**thought, "id": "rs_1"},  # no text (another server's summary-only item)
        {"role": "user", "content": "And 3+3?"},
    ]
    body = _responses_body(client, input=items)
    stored = client.post("/v1/responses", json={**body, "store": True})
    assert stored.status_code == 200, stored.text
    assert [(m.content, m.reasoning) for m in _assistant(fake_engine)] == [("4", "2+2 is 4.")]
    listed = client.get(f"/v1/responses/{stored.json()['id']}/input_items").json()["data"]
    kept = [i for i in listed if i["type"] == "reasoning"]
    assert {i["id"][:3] for i in kept} == {"rs_"} and len(kept) == 2
    assert any(i.get("content") == items[1]["content"] for i in kept)
    # A stored answer's reasoning item continues the conversation the same way.
    first = client.post("/v1/responses", json={**body, "input": "hi", "store": True}).json()
    follow = {**body, "input": "more", "store": True, "previous_response_id": first["id"]}
    assert client.post("/v1/responses", json=follow).status_code == 200
    assert [(m.content, m.reasoning) for m in _assistant(fake_engine)] == [(ANSWER, REASONING)]


def test_anthropic_thinking_blocks_go_with_the_assistant_turn(
    client: TestClient, fake_engine: FakeEngine, thinking: tuple[str, ...]
) -> None:
    model = client.get("/v1/models").json()["data"][0]["id"]
    first = {"model": model, "max_tokens": 50, "messages": CHAT["messages"]}
    answer = client.post("/v1/messages", json=first).json()
    thought = answer["content"][0]
    # A stable, non-empty signature: the same as the stream's signature_delta.
    assert thought["signature"] and thought["signature"].strip() == thought["signature"]
    events = _sse(client.post("/v1/messages", json={**first, "stream": True}).text)
    signed = [e["delta"] for e in events if e["type"] == "content_block_delta"]
    assert [d["signature"] for d in signed if d["type"] == "signature_delta"] == [
        thought["signature"]
    ]
    history = [*CHAT["messages"], {"role": "assistant", "content": answer["content"]}]
    history.append({"role": "user", "content": "more"})
    assert client.post("/v1/messages", json={**first, "messages": history}).status_code == 200
    assert [(m.content, m.reasoning) for m in _assistant(fake_engine)] == [(ANSWER, REASONING)]


def test_openai_sdk_message_sent_back_carries_its_reasoning(
    client: TestClient, fake_engine: FakeEngine, thinking: tuple[str, ...]
) -> None:
    """The openai SDK's usage: the answer's message object appended to the history, as the
    SDK holds it (reasoning_content and reasoning kept as extra fields)."""
    sdk = openai.OpenAI(base_url=LOCAL + "/v1", api_key="x", http_client=client)
    history: list[Any] = [{"role": "user", "content": "hi"}]
    answer = sdk.chat.completions.create(model="", messages=history, max_tokens=50)
    history += [answer.choices[0].message, {"role": "user", "content": "more"}]
    sdk.chat.completions.create(model="", messages=history, max_tokens=50)
    assert [(m.content, m.reasoning) for m in _assistant(fake_engine)] == [(ANSWER, REASONING)]


def test_openai_message_fields_of_an_earlier_answer_are_accepted(
    client: TestClient, fake_engine: FakeEngine
) -> None:
    earlier = {"role": "assistant", "content": "x", "annotations": [], "audio": None}
    earlier |= {"function_call": None, "refusal": None}
    messages = [{"role": "user", "content": "hi"}, earlier, {"role": "user", "content": "more"}]
    resp = client.post("/v1/chat/completions", json={"messages": messages})
    assert resp.status_code == 200, resp.text
    assert [(m.content, m.reasoning) for m in _assistant(fake_engine)] == [("x", "")]


def test_ollama_thinking_sent_back_goes_with_the_assistant_turn(
    client: TestClient, fake_engine: FakeEngine, thinking: tuple[str, ...]
) -> None:
    model = client.get("/v1/models").json()["data"][0]["id"]
    first = {"model": model, "messages": CHAT["messages"], "stream": False, "think": True}
    message = client.post("/api/chat", json=first).json()["message"]
    assert message["thinking"] == REASONING
    history = [*CHAT["messages"], message, {"role": "user", "content": "more"}]
    assert client.post("/api/chat", json={**first, "messages": history}).status_code == 200
    assert [(m.content, m.reasoning) for m in _assistant(fake_engine)] == [(ANSWER, REASONING)]


def test_seed_websocket(client: TestClient, thinking: tuple[str, ...]) -> None:
    ws_url = "ws://127.0.0.1:3000/api/v1/ws"
    message = {"type": "generate", "id": "r1", "payload": {"prompt": "hi", "max_tokens": 50}}
    kinds, reasoning, tokens = [], "", ""
    with client.websocket_connect(ws_url) as ws:
        ws.send_text(json.dumps(message))
        while True:
            got = json.loads(ws.receive_text())
            if got.get("id") != "r1":
                continue
            kinds.append(got["type"])
            if got["type"] == "reasoning":
                reasoning += got["data"]["reasoning"]
            elif got["type"] == "token":
                tokens += got["data"]["token"]
            else:
                break
    assert (reasoning, tokens) == (REASONING, ANSWER)
    assert kinds.index("token") > max(i for i, k in enumerate(kinds) if k == "reasoning")
    assert got["type"] == "done"
    assert (got["data"]["completion"]["reasoning"], got["data"]["completion"]["text"]) == (
        REASONING,
        ANSWER,
    )
