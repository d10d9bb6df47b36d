"""The OpenAI-compatible routes (/v1/...) on the fake engine: response and chunk shapes as
OpenAI's API defines them, and OpenAI's error shape."""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import openai
import pytest
from fastapi.testclient import TestClient

from browser_llm.api.app import create_app
from browser_llm.config import DEFAULT_MODEL_ID, Settings
from browser_llm.core.errors import BrowserLLMError, InferenceError, ValidationError
from tests.api.conftest import LOCAL
from tests.api.failing_engine import FailingEngine
from tests.fakes import FAKE_PIECES, FakeEngine

TEXT = "".join(FAKE_PIECES)
CHAT = {"model": DEFAULT_MODEL_ID, "messages": [{"role": "user", "content": "Say hi"}]}
COMPLETION = {"model": DEFAULT_MODEL_ID, "prompt": "Say hi"}
ERROR_KEYS = {"message", "type", "param", "code"}


def _sse(body: str) -> list[Any]:
    """The data of every event; `[DONE]` stays a string."""
    assert body.endswith("\n\n"), "every SSE event ends with a blank line"
    events: list[Any] = []
    for block in body.split("\n\n")[:-1]:
        assert block.startswith("data: "), block
        data = block[len("data: ") :]
        events.append(data if data == "[DONE]" else json.loads(data))
    return events


def _check_usage(usage: dict[str, Any], prompt: int | None, completion: int) -> None:
    """`prompt` None: any count (the fake engine counts the words of a plain prompt only)."""
    assert isinstance(usage["prompt_tokens"], int) and usage["prompt_tokens"] >= 0
    if prompt is not None:
        assert usage["prompt_tokens"] == prompt
    assert usage["completion_tokens"] == completion
    assert usage["total_tokens"] == usage["prompt_tokens"] + completion


# ---- whole answers ---------------------------------------------------------------------
def test_chat_completion_shape(client: TestClient) -> None:
    resp = client.post("/v1/chat/completions", json=CHAT)
    assert resp.status_code == 200, resp.text
    assert resp.headers["content-type"].startswith("application/json")
    body = resp.json()
    assert body["id"].startswith("chatcmpl-") and len(body["id"]) > len("chatcmpl-")
    assert body["object"] == "chat.completion"
    assert isinstance(body["created"], int) and body["created"] > 1_600_000_000
    assert body["model"] == DEFAULT_MODEL_ID  # the model that answered
    assert len(body["choices"]) == 1
    choice = body["choices"][0]
    assert choice["index"] == 0
    assert choice["message"] == {"role": "assistant", "content": TEXT}
    assert choice["finish_reason"] == "stop"
    assert "success" not in body and "data" not in body  # no Browser LLM envelope
    _check_usage(body["usage"], None, len(FAKE_PIECES))


def test_text_completion_shape(client: TestClient) -> None:
    body = client.post("/v1/completions", json={**COMPLETION, "max_tokens": 50}).json()
    assert body["id"].startswith("cmpl-")
    assert body["object"] == "text_completion"
    assert isinstance(body["created"], int)
    assert body["model"] == DEFAULT_MODEL_ID
    [choice] = body["choices"]
    assert (choice["index"], choice["text"], choice["finish_reason"]) == (0, TEXT, "stop")
    _check_usage(body["usage"], 2, len(FAKE_PIECES))


def test_ids_differ_between_answers(client: TestClient) -> None:
    ids = {client.post("/v1/chat/completions", json=CHAT).json()["id"] for _ in range(3)}
    assert len(ids) == 3


@pytest.mark.parametrize("path", ["/v1/chat/completions", "/v1/completions"])
def test_max_tokens_reached_is_length(client: TestClient, path: str) -> None:
    body = CHAT if "chat" in path else COMPLETION
    data = client.post(path, json={**body, "max_tokens": 2}).json()
    assert data["choices"][0]["finish_reason"] == "length"
    assert data["usage"]["completion_tokens"] == 2


def test_parameters_reach_the_engine(client: TestClient, fake_engine: FakeEngine) -> None:
    client.post(
        "/v1/chat/completions",
        json={
            **CHAT,
            "max_completion_tokens": 7,
            "temperature": 0.2,
            "top_p": 0.5,
            "stop": "END",
            "seed": 3,
            "frequency_penalty": 0.1,
            "presence_penalty": -0.2,
            "logit_bias": {"15": -100, "16": 2.5},
        },
    )
    client.post("/v1/completions", json={**COMPLETION, "stop": ["a", "b"]})
    client.post("/v1/chat/completions", json=CHAT)
    chat, completion, default_chat = fake_engine.submitted
    p = chat.params
    assert (p.max_tokens, p.temperature, p.top_p, p.stop, p.seed) == (7, 0.2, 0.5, ("END",), 3)
    assert (p.frequency_penalty, p.presence_penalty) == (0.1, -0.2)
    assert p.logit_bias == ((15, -math.inf), (16, 2.5))  # -100 bans, as OpenAI documents
    assert chat.messages is not None and chat.messages[-1].content == "Say hi"
    # OpenAI's defaults: completions 16 tokens, temperature and top_p 1.
    assert completion.params.max_tokens == 16
    assert completion.params.stop == ("a", "b")
    assert completion.raw and completion.prompt == "Say hi"
    assert (default_chat.params.temperature, default_chat.params.top_p) == (1.0, 1.0)


def test_models_list_shape(client: TestClient) -> None:
    resp = client.get("/v1/models")
    assert resp.status_code == 200
    body = resp.json()
    assert body["object"] == "list"
    ids = [m["id"] for m in body["data"]]
    assert DEFAULT_MODEL_ID in ids
    for model in body["data"]:
        # OpenAI's four fields, and the extension `loaded` (in memory now).
        assert set(model) == {"id", "object", "created", "owned_by", "loaded"}
        assert model["loaded"] is (model["id"] == DEFAULT_MODEL_ID)
        assert model["object"] == "model"
        assert isinstance(model["created"], int)
        assert isinstance(model["owned_by"], str) and model["owned_by"]


@pytest.mark.parametrize("path", ["/v1/chat/completions", "/v1/completions"])
def test_n_choices_whole_and_streamed(
    client: TestClient, fake_engine: FakeEngine, path: str
) -> None:
    body = {**(CHAT if "chat" in path else COMPLETION), "n": 3, "seed": 7, "max_tokens": 20}
    whole = client.post(path, json=body).json()
    assert [c["index"] for c in whole["choices"]] == [0, 1, 2]
    texts = [c["message"]["content"] if "chat" in path else c["text"] for c in whole["choices"]]
    assert texts == ["".join(FAKE_PIECES)] * 3
    assert whole["usage"]["completion_tokens"] == 3 * len(FAKE_PIECES)
    assert whole["usage"]["prompt_tokens"] == 2  # "Say hi": counted once
    # Each choice its own sequence; a seed gives choice i the seed + i.
    assert [r.params.seed for r in fake_engine.submitted] == [7, 8, 9]
    events = [
        json.loads(line[6:])
        for line in client.post(
            path, json={**body, "stream": True, "stream_options": {"include_usage": True}}
        ).text.splitlines()
        if line.startswith("data: {")
    ]
    streamed: dict[int, str] = {}
    finished = set()
    for event in events[:-1]:
        choice = event["choices"][0]
        piece = choice["delta"].get("content") if "chat" in path else choice["text"]
        streamed[choice["index"]] = streamed.get(choice["index"], "") + (piece or "")
        if choice["finish_reason"]:
            finished.add(choice["index"])
    assert streamed == dict(enumerate(texts)) and finished == {0, 1, 2}
    assert events[-1]["usage"]["completion_tokens"] == 3 * len(FAKE_PIECES)


@pytest.mark.parametrize("n", [0, 17])
def test_n_out_of_range_is_a_400(client: TestClient, n: int) -> None:
    resp = client.post("/v1/chat/completions", json={**CHAT, "n": n})
    assert _openai_error(resp, 400, "invalid_request_error")["param"] == "n"


@pytest.mark.parametrize("bias", [{"x": 1}, {"15": 101}, {"15": -100.5}])
def test_bad_logit_bias_is_a_400_naming_it(client: TestClient, bias: dict[str, Any]) -> None:
    resp = client.post("/v1/chat/completions", json={**CHAT, "logit_bias": bias})
    assert _openai_error(resp, 400, "invalid_request_error")["param"] == "logit_bias"


def test_models_retrieve_through_the_openai_package(client: TestClient) -> None:
    """openai's client.models.retrieve (issue 33 item 8): one entry of the list."""
    oai = openai.OpenAI(base_url=f"{LOCAL}/v1", api_key="unused", http_client=client)
    model = oai.models.retrieve(DEFAULT_MODEL_ID)
    listed = {m["id"]: m for m in client.get("/v1/models").json()["data"]}
    assert model.id == DEFAULT_MODEL_ID and model.object == "model"
    assert model.owned_by == listed[DEFAULT_MODEL_ID]["owned_by"]
    assert model.model_extra == {"loaded": True}
    with pytest.raises(openai.NotFoundError) as missing:
        oai.models.retrieve("no-such-model")
    assert missing.value.param == "model" and "no-such-model" in missing.value.message


# ---- streams -----------------------------------------------------------------------------
def test_chat_stream_chunks(client: TestClient) -> None:
    resp = client.post("/v1/chat/completions", json={**CHAT, "stream": True, "max_tokens": 3})
    assert resp.status_code == 200
    assert resp.headers["content-type"].startswith("text/event-stream")
    events = _sse(resp.text)
    assert events[-1] == "[DONE]"
    chunks = events[:-1]
    assert all(isinstance(c, dict) for c in chunks)
    assert len({c["id"] for c in chunks}) == 1 and chunks[0]["id"].startswith("chatcmpl-")
    assert len({c["created"] for c in chunks}) == 1
    for chunk in chunks:
        assert chunk["object"] == "chat.completion.chunk"
        assert chunk["model"] == DEFAULT_MODEL_ID
        assert "usage" not in chunk or chunk["usage"] is None  # not asked for
        [choice] = chunk["choices"]
        assert choice["index"] == 0
    deltas = [c["choices"][0]["delta"] for c in chunks]
    assert deltas[0].get("role") == "assistant"
    assert "".join(d.get("content") or "" for d in deltas) == "Hello, wor"
    finishes = [c["choices"][0]["finish_reason"] for c in chunks]
    assert finishes[-1] == "length"
    assert all(f is None for f in finishes[:-1])


def test_chat_stream_usage_when_asked(client: TestClient) -> None:
    resp = client.post(
        "/v1/chat/completions",
        json={**CHAT, "stream": True, "stream_options": {"include_usage": True}},
    )
    events = _sse(resp.text)
    assert events[-1] == "[DONE]"
    usage_chunk = events[-2]
    # OpenAI: one last chunk with empty choices and the usage of the whole request.
    assert usage_chunk["choices"] == []
    _check_usage(usage_chunk["usage"], None, len(FAKE_PIECES))
    assert usage_chunk["id"] == events[0]["id"]
    assert events[-3]["choices"][0]["finish_reason"] == "stop"
    assert all(e.get("usage") is None for e in events[:-2])


def test_text_completion_stream(client: TestClient) -> None:
    resp = client.post(
        "/v1/completions",
        json={**COMPLETION, "stream": True, "stream_options": {"include_usage": True}},
    )
    events = _sse(resp.text)
    assert events[-1] == "[DONE]"
    chunks = events[:-2]
    for chunk in chunks:
        assert chunk["object"] == "text_completion"
        assert chunk["id"].startswith("cmpl-")
    assert "".join(c["choices"][0]["text"] for c in chunks) == TEXT
    assert chunks[-1]["choices"][0]["finish_reason"] == "stop"
    _check_usage(events[-2]["usage"], 2, len(FAKE_PIECES))


# ---- errors --------------------------------------------------------------------------------
def _openai_error(resp: Any, status: int, kind: str) -> dict[str, Any]:
    assert resp.status_code == status, resp.text
    body = resp.json()
    assert set(body) == {"error"}, body
    error: dict[str, Any] = body["error"]
    assert set(error) == ERROR_KEYS, error
    assert error["type"] == kind
    assert isinstance(error["message"], str) and error["message"]
    return error


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({**CHAT, "messages": []}, "messages"),
        ({"model": "x"}, "messages"),
        ({**CHAT, "temperature": 5}, "temperature"),
        ({**CHAT, "max_tokens": 0}, "max_tokens"),
        ({**CHAT, "n": 17}, "n"),
        ({**CHAT, "messages": [{"role": "robot", "content": "hi"}]}, "messages.0.role"),
    ],
)
def test_bad_chat_request_is_an_invalid_request_error(
    client: TestClient, body: dict[str, Any], param: str
) -> None:
    error = _openai_error(
        client.post("/v1/chat/completions", json=body), 400, "invalid_request_error"
    )
    assert error["param"] == param
    assert error["code"] == "VALIDATION_ERROR"


def test_bad_completion_request_is_an_invalid_request_error(client: TestClient) -> None:
    error = _openai_error(
        client.post("/v1/completions", json={**COMPLETION, "prompt": ""}),
        400,
        "invalid_request_error",
    )
    assert error["param"] == "prompt"
    resp = client.post(
        "/v1/completions", content=b"{not json", headers={"content-type": "application/json"}
    )
    _openai_error(resp, 400, "invalid_request_error")


def test_unknown_v1_path_is_an_openai_not_found(client: TestClient) -> None:
    error = _openai_error(client.get("/v1/nope"), 404, "not_found_error")
    assert error["code"] == "NOT_FOUND"


def test_prompt_too_long_is_a_400_before_any_chunk(client: TestClient) -> None:
    resp = client.post(
        "/v1/completions", json={**COMPLETION, "prompt": "word " * 100, "stream": True}
    )
    error = _openai_error(resp, 400, "invalid_request_error")
    # OpenAI's code for it, on the prompt's field (chat: messages); the seed API keeps its own.
    assert (error["code"], error["param"]) == ("context_length_exceeded", "prompt")
    chat = {**CHAT, "messages": [{"role": "user", "content": "word " * 100}]}
    error = _openai_error(
        client.post("/v1/chat/completions", json=chat), 400, "invalid_request_error"
    )
    assert (error["code"], error["param"]) == ("context_length_exceeded", "messages")
    seed = client.post("/api/v1/generate", json={"prompt": "word " * 100}).json()["error"]
    assert seed["code"] == "VALIDATION_ERROR"
    assert seed["details"]["reason"] == "context_length_exceeded"


@pytest.fixture
def failing_client(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[TestClient]:
    error: BrowserLLMError = request.param
    settings = Settings(models_dir=tmp_path / "models")
    app = create_app(settings, engine=FailingEngine(tokens=2, error=error))
    with TestClient(app, base_url=LOCAL) as test_client:
        yield test_client


@pytest.mark.parametrize(
    ("failing_client", "kind", "code"),
    [
        (InferenceError("decode failed"), "server_error", "INFERENCE_ERROR"),
        # The type follows the code's status (400) as in every other error, not always
        # server_error.
        (ValidationError("bad output constraint"), "invalid_request_error", "VALIDATION_ERROR"),
    ],
    indirect=["failing_client"],
)
@pytest.mark.parametrize("path", ["/v1/chat/completions", "/v1/completions"])
def test_an_error_mid_stream_is_an_openai_error_event_then_done(
    failing_client: TestClient, kind: str, code: str, path: str
) -> None:
    body = CHAT if "chat" in path else COMPLETION
    resp = failing_client.post(path, json={**body, "stream": True, "max_tokens": 50})
    assert resp.status_code == 200  # the stream had begun
    events = _sse(resp.text)
    assert events[-1] == "[DONE]"
    error_event = events[-2]
    assert set(error_event) == {"error"}, error_event
    assert set(error_event["error"]) == ERROR_KEYS
    assert error_event["error"]["type"] == kind
    assert error_event["error"]["code"] == code
    assert error_event["error"]["message"]
    texts = [
        (c["choices"][0].get("delta", {}).get("content") or c["choices"][0].get("text") or "")
        for c in events[:-2]
    ]
    assert "".join(texts) == "".join(FAKE_PIECES[:2])
    assert all(c["choices"][0]["finish_reason"] is None for c in events[:-2])
