"""A thinking model's reasoning in each dialect's own field, streamed and whole, with the
fake engine: the model's template is taken as a thinking one (service/thinking/plan.py is
tested on real templates in tests/unit/test_thinking.py), the output scripted."""

from __future__ import annotations

import json
from typing import Any

import pytest
from fastapi.testclient import TestClient

from browser_llm.service.thinking.plan import Thinking
from browser_llm.service.thinking.split import ThinkMarkers
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
    think = "".join(e["delta"]["thinking"] for e in deltas if e["index"] == 0)
    text = "".join(e["delta"]["text"] for e in deltas if e["index"] == 1)
    assert (think, text) == (REASONING, ANSWER)
    assert {e["delta"]["type"] for e in deltas if e["index"] == 0} == {"thinking_delta"}
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


def test_responses_output_text_is_the_answer_only(
    client: TestClient, thinking: tuple[str, ...]
) -> None:
    # The Responses API's own `reasoning` item is not rendered yet: the reasoning must at
    # least stay out of the answer's text, streamed and whole.
    body = {"model": client.get("/v1/models").json()["data"][0]["id"], "input": "hi"}
    whole = client.post("/v1/responses", json={**body, "store": False}).json()
    texts = [p["text"] for item in whole["output"] for p in item.get("content", [])]
    assert texts == [ANSWER]
    streamed = client.post("/v1/responses", json={**body, "store": False, "stream": True}).text
    events = _sse(streamed)
    deltas = "".join(e["delta"] for e in events if e["type"] == "response.output_text.delta")
    assert deltas == ANSWER


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
