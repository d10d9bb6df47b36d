"""Log-probability fields on the OpenAI and Ollama routes, on the fake engine: request
validation, the option reaching the engine, and the answer shapes (streamed and whole).
Their values come from the real engine in tests/e2e/test_logprobs.py."""

from __future__ import annotations

import json
from typing import Any

import pytest
from fastapi.testclient import TestClient

from browser_llm.config import DEFAULT_MODEL_ID as MODEL
from tests.fakes import FAKE_LOGPROB, FAKE_PIECES, FakeEngine

CHAT = {"model": MODEL, "messages": [{"role": "user", "content": "Say hi"}]}
COMPLETION = {"model": MODEL, "prompt": "Say hi", "max_tokens": 50}


def _sse(body: str) -> list[dict[str, Any]]:
    blocks = [b[len("data: ") :] for b in body.split("\n\n") if b]
    return [json.loads(b) for b in blocks if b != "[DONE]"]


def _entry(piece: str, top: int) -> dict[str, Any]:
    one = {"token": piece, "logprob": FAKE_LOGPROB, "bytes": list(piece.encode())}
    alts = [
        {"token": f"alt{k}", "logprob": -float(k), "bytes": list(f"alt{k}".encode())}
        for k in range(1, top)
    ]
    return {**one, "top_logprobs": [one, *alts][:top]}


@pytest.mark.parametrize(
    ("body", "option"),
    [
        ({}, None),
        ({"logprobs": False}, None),
        ({"logprobs": True}, 0),
        ({"logprobs": True, "top_logprobs": 0}, 0),
        ({"logprobs": True, "top_logprobs": 20}, 20),
    ],
)
def test_chat_option_reaches_the_engine(
    client: TestClient, fake_engine: FakeEngine, body: dict[str, Any], option: int | None
) -> None:
    assert client.post("/v1/chat/completions", json={**CHAT, **body}).status_code == 200
    assert fake_engine.submitted[-1].logprobs == option


def test_chat_whole_answer_shape(client: TestClient) -> None:
    body = {**CHAT, "logprobs": True, "top_logprobs": 2}
    choice = client.post("/v1/chat/completions", json=body).json()["choices"][0]
    assert choice["logprobs"] == {
        "content": [_entry(p, 2) for p in FAKE_PIECES],
        "refusal": None,
    }


def test_chat_stream_carries_each_chunks_tokens(client: TestClient) -> None:
    body = {**CHAT, "logprobs": True, "top_logprobs": 1, "stream": True}
    chunks = _sse(client.post("/v1/chat/completions", json=body).text)
    first, *middle, last = chunks
    assert first["choices"][0]["logprobs"] is None  # the role chunk
    assert last["choices"][0]["logprobs"] is None  # the finish chunk
    for chunk, piece in zip(middle, FAKE_PIECES, strict=True):
        choice = chunk["choices"][0]
        assert choice["delta"] == {"content": piece}
        assert choice["logprobs"] == {"content": [_entry(piece, 1)], "refusal": None}


def test_legacy_completion_shape(client: TestClient, fake_engine: FakeEngine) -> None:
    body = client.post("/v1/completions", json={**COMPLETION, "logprobs": 2}).json()
    assert fake_engine.submitted[-1].logprobs == 2
    lp = body["choices"][0]["logprobs"]
    assert lp["tokens"] == list(FAKE_PIECES)
    assert lp["token_logprobs"] == [FAKE_LOGPROB] * len(FAKE_PIECES)
    assert lp["top_logprobs"] == [{p: FAKE_LOGPROB, "alt1": -1.0} for p in FAKE_PIECES]
    starts = [len("Say hi") + len("".join(FAKE_PIECES[:i])) for i in range(len(FAKE_PIECES))]
    assert lp["text_offset"] == starts  # from the prompt's start, as OpenAI counts


def test_legacy_completion_stream(client: TestClient) -> None:
    body = {**COMPLETION, "logprobs": 0, "stream": True}
    chunks = _sse(client.post("/v1/completions", json=body).text)
    tokens = [
        t
        for c in chunks
        if c["choices"][0]["logprobs"]
        for t in c["choices"][0]["logprobs"]["tokens"]
    ]
    assert tokens == list(FAKE_PIECES)
    # logprobs 0: the chosen token alone in each top_logprobs map
    assert chunks[0]["choices"][0]["logprobs"]["top_logprobs"] == [{FAKE_PIECES[0]: FAKE_LOGPROB}]


def test_without_logprobs_answers_say_null(client: TestClient, fake_engine: FakeEngine) -> None:
    assert client.post("/v1/chat/completions", json=CHAT).json()["choices"][0]["logprobs"] is None
    chunks = _sse(client.post("/v1/completions", json={**COMPLETION, "stream": True}).text)
    assert all(c["choices"][0]["logprobs"] is None for c in chunks)
    assert fake_engine.submitted[-1].logprobs is None


@pytest.mark.parametrize(
    ("path", "body", "param"),
    [
        ("/v1/chat/completions", {**CHAT, "top_logprobs": 2}, "top_logprobs"),
        ("/v1/chat/completions", {**CHAT, "logprobs": True, "top_logprobs": 21}, "top_logprobs"),
        ("/v1/chat/completions", {**CHAT, "logprobs": 1}, "logprobs"),  # a bool in chat
        ("/v1/completions", {**COMPLETION, "logprobs": 6}, "logprobs"),
        ("/v1/completions", {**COMPLETION, "logprobs": -1}, "logprobs"),
    ],
)
def test_bad_values_are_openai_400s(
    client: TestClient, path: str, body: dict[str, Any], param: str
) -> None:
    resp = client.post(path, json=body)
    assert resp.status_code == 400, resp.text
    error = resp.json()["error"]
    assert (error["type"], error["param"]) == ("invalid_request_error", param)


def test_ollama_generate_and_chat_lines(client: TestClient, fake_engine: FakeEngine) -> None:
    body = {"model": MODEL, "prompt": "x", "logprobs": True, "top_logprobs": 3, "stream": False}
    whole = client.post("/api/generate", json=body).json()
    assert fake_engine.submitted[-1].logprobs == 3
    assert whole["logprobs"] == [_entry(p, 3) for p in FAKE_PIECES]
    chat = {**CHAT, "logprobs": True}
    lines = [json.loads(x) for x in client.post("/api/chat", json=chat).text.splitlines()]
    assert [ln["logprobs"] for ln in lines[:-1]] == [[_entry(p, 0)] for p in FAKE_PIECES]
    assert lines[-1]["done"] is True
    plain = client.post("/api/generate", json={**body, "logprobs": False, "top_logprobs": None})
    assert "logprobs" not in plain.json()
