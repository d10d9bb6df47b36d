"""Hostile and broken input on every endpoint of a real server: always a 4xx in the
envelope (the OpenAI routes: in OpenAI's error shape), never a 500, and the server
keeps serving."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from websockets.sync.client import connect

from tests.e2e.conftest import Server
from tests.reliability.probes import greedy, wait_idle


def _nested_schema(depth: int) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "string"}
    for _ in range(depth):
        schema = {"type": "object", "properties": {"a": schema}}
    return schema


def _nested_json(depth: int) -> bytes:
    return b'{"prompt": "x", "json_schema": ' + b'{"a": ' * depth + b"1" + b"}" * depth + b"}"


# name -> raw body for POST /generate
GENERATE_BODIES: dict[str, bytes] = {
    "invalid json": b'{"prompt": ',
    "empty body": b"",
    "json array": b'["prompt"]',
    "json string": b'"prompt"',
    "json null": b"null",
    "prompt is a number": b'{"prompt": 5}',
    "prompt is an object": b'{"prompt": {"text": "x"}}',
    "max_tokens as string": b'{"prompt": "x", "max_tokens": "10"}',
    "stream as string": b'{"prompt": "x", "stream": "yes"}',
    "stop is a number": b'{"prompt": "x", "stop": 5}',
    "temperature NaN": b'{"prompt": "x", "temperature": NaN}',
    "temperature Infinity": b'{"prompt": "x", "temperature": Infinity}',
    "top_p -Infinity": b'{"prompt": "x", "top_p": -Infinity}',
    "max_tokens Infinity": b'{"prompt": "x", "max_tokens": Infinity}',
    "NaN in json_schema": b'{"prompt": "x", "json_schema": {"type": "number", "enum": [NaN]}}',
    "max_tokens 1e400": b'{"prompt": "x", "max_tokens": 1e400}',
    "max_tokens 10**30": b'{"prompt": "x", "max_tokens": 1000000000000000000000000000000}',
    "top_k with 5000 digits": b'{"prompt": "x", "top_k": ' + b"9" * 5000 + b"}",
    "seed 2**64": b'{"prompt": "x", "seed": 18446744073709551616}',
    "seed negative": b'{"prompt": "x", "seed": -1}',
    "empty prompt": b'{"prompt": ""}',
    "invalid utf-8": b'{"prompt": "\xff\xfe\xc3"}',
    "lone surrogate in prompt": b'{"prompt": "a\\ud800b"}',
    "lone surrogate in raw prompt": b'{"prompt": "\\udc00", "raw": true}',
    "lone surrogate in stop": b'{"prompt": "x", "stop": ["\\ud83d"]}',
    "lone surrogate in json_schema": b'{"prompt": "x", "json_schema": {"enum": ["\\ud800"]}}',
    "10000 stop strings": json.dumps({"prompt": "x", "stop": ["s"] * 10_000}).encode(),
    "stop string too long": json.dumps({"prompt": "x", "stop": ["s" * 10_000]}).encode(),
    "schema nested 200 deep": json.dumps(
        {"prompt": "x", "json_schema": _nested_schema(200)}
    ).encode(),
    "json nested 5000 deep": _nested_json(5000),
    "unknown field": b'{"prompt": "x", "max_token": 5}',
    "unknown json_schema keyword": b'{"prompt": "x", "json_schema": {"type": "x", "if": {}}}',
}


def _check_envelope(resp: httpx.Response) -> dict[str, Any]:
    assert 400 <= resp.status_code < 500, (resp.status_code, resp.text[:300])
    body: dict[str, Any] = resp.json()
    assert body["success"] is False
    assert isinstance(body["error"]["code"], str) and body["error"]["message"]
    assert body["metadata"]["requestId"] == resp.headers["X-Request-ID"]
    return body


@pytest.fixture(scope="module")
def api(rel_server: Server) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=rel_server.base_url, timeout=120) as client:
        yield client


@pytest.mark.parametrize("name", list(GENERATE_BODIES))
def test_generate_refuses_bad_bodies_with_a_4xx(api: httpx.Client, name: str) -> None:
    for stream in (False, True):
        raw = GENERATE_BODIES[name]
        if stream and raw.startswith(b'{"prompt": "x"'):
            raw = raw.replace(b'{"prompt": "x"', b'{"prompt": "x", "stream": true', 1)
        resp = api.post("/generate", content=raw, headers={"Content-Type": "application/json"})
        _check_envelope(resp)


def test_a_12_mb_body_is_413_with_or_without_a_length(api: httpx.Client) -> None:
    big = b'{"prompt": "' + b"a" * (12 * 1024 * 1024) + b'"}'
    resp = api.post("/generate", content=big, headers={"Content-Type": "application/json"})
    assert _check_envelope(resp)["error"]["code"] == "PAYLOAD_TOO_LARGE"

    def chunks() -> Iterator[bytes]:
        for i in range(0, len(big), 1 << 20):
            yield big[i : i + (1 << 20)]

    resp = api.post("/generate", content=chunks(), headers={"Content-Type": "application/json"})
    assert _check_envelope(resp)["error"]["code"] == "PAYLOAD_TOO_LARGE"


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/models/%00"),
        ("GET", "/models/" + "x" * 5000),
        ("POST", "/models/%ff%fe/load"),
        ("POST", "/models/..%2F..%2Fetc%2Fpasswd/load"),
        ("POST", "/models/%00/unload"),
        ("GET", "/debug/logs?limit=abc"),
        ("GET", "/debug/logs?limit=0"),
        ("GET", "/debug/logs?limit=99999999999999999999999"),
        ("GET", "/debug/logs?since=NaN"),
        ("GET", "/debug/logs?since=-Infinity"),
        ("GET", "/debug/logs?level=%ff"),
        ("GET", "/debug/profile?metric=" + "m" * 100),
        ("GET", "/debug/profile?metric=nope"),
        ("GET", "/debug/profile?since=nan"),
        ("DELETE", "/generate"),
        ("GET", "/no/such/endpoint"),
    ],
)
def test_other_endpoints_refuse_bad_paths_and_queries(
    api: httpx.Client, method: str, path: str
) -> None:
    _check_envelope(api.request(method, path))


def test_debug_logs_since_infinity_is_not_an_error(api: httpx.Client) -> None:
    resp = api.get("/debug/logs", params={"since": "Infinity"})
    assert resp.status_code in (200, 400)  # a 4xx or an empty list, never a 500
    assert resp.json()["success"] is (resp.status_code == 200)


OPENAI_BODIES: dict[str, bytes] = {
    "invalid json": b'{"messages": [',
    "no messages": b'{"model": "m"}',
    "messages not a list": b'{"messages": "hi"}',
    "bad role": b'{"messages": [{"role": "wizard", "content": "hi"}]}',
    "content a number": b'{"messages": [{"role": "user", "content": 5}]}',
    "lone surrogate": b'{"messages": [{"role": "user", "content": "\\ud800"}]}',
    "lone surrogate in a part": (
        b'{"messages": [{"role": "user", "content": [{"type": "text", "text": "\\udfff"}]}]}'
    ),
    "temperature NaN": b'{"messages": [{"role": "user", "content": "hi"}], "temperature": NaN}',
    "max_tokens huge": b'{"messages": [{"role": "user", "content": "hi"}], "max_tokens": 1e999}',
    "n is 17": b'{"messages": [{"role": "user", "content": "hi"}], "n": 17}',
    "schema nested 200 deep": json.dumps(
        {
            "messages": [{"role": "user", "content": "hi"}],
            "response_format": {
                "type": "json_schema",
                "json_schema": {"name": "x", "schema": _nested_schema(200)},
            },
        }
    ).encode(),
}


@pytest.mark.parametrize("name", list(OPENAI_BODIES))
def test_openai_chat_refuses_bad_bodies_in_openai_shape(rel_server: Server, name: str) -> None:
    root = rel_server.base_url.removesuffix("/api/v1")
    resp = httpx.post(
        f"{root}/v1/chat/completions",
        content=OPENAI_BODIES[name],
        headers={"Content-Type": "application/json"},
        timeout=60,
    )
    assert 400 <= resp.status_code < 500, (resp.status_code, resp.text[:300])
    error = resp.json()["error"]
    assert error["type"] == "invalid_request_error" and error["message"]


def test_openai_completions_refuses_a_lone_surrogate(rel_server: Server) -> None:
    root = rel_server.base_url.removesuffix("/api/v1")
    resp = httpx.post(
        f"{root}/v1/completions",
        content=b'{"prompt": "\\ud800", "max_tokens": 3}',
        headers={"Content-Type": "application/json"},
        timeout=60,
    )
    assert resp.status_code == 400, resp.text


WS_MESSAGES = [
    "not json",
    "[1, 2]",
    '{"type": "generate"}',
    '{"type": "generate", "id": 5, "payload": {}}',
    '{"type": "generate", "id": "' + "i" * 500 + '", "payload": {}}',
    '{"type": "fly", "id": "a"}',
    '{"type": "generate", "id": "b", "payload": {"prompt": "\\ud800"}}',
    '{"type": "generate", "id": "c", "payload": {"prompt": "x", "temperature": NaN}}',
    '{"type": "generate", "id": "d", "payload": "just a string"}',
    '{"type": "abort", "id": "never-started"}',
    '{"type": "subscribe", "id": "e", "payload": {"events": ["everything"]}}',
]


def test_websocket_answers_bad_messages_with_error_frames(rel_server: Server) -> None:
    with connect(rel_server.base_url.replace("http://", "ws://") + "/ws") as ws:
        for message in WS_MESSAGES:
            ws.send(message)
            reply = json.loads(ws.recv(timeout=30))
            assert reply["type"] == "error", (message, reply)
            assert reply["data"]["code"] in ("VALIDATION_ERROR", "NOT_FOUND"), reply
            # The spec types `id` as a string, and error data is the SSE stream's shape.
            assert isinstance(reply["id"], str), reply
            assert isinstance(reply["data"]["error"], str) and reply["data"]["error"], reply
        # The socket still works after all that.
        ws.send(json.dumps({"type": "generate", "id": "ok", "payload": greedy("Hi", 3)}))
        while (reply := json.loads(ws.recv(timeout=60)))["type"] == "token":
            pass
        assert reply["type"] == "done", reply
        assert reply["data"]["completion"]["finish_reason"] in ("stop", "length"), reply


def test_server_is_healthy_after_the_bad_input(rel_server: Server, api: httpx.Client) -> None:
    status = wait_idle(rel_server)
    assert status["status"] == "ready"
    assert api.post("/generate", json=greedy("Hello", 4)).status_code == 200
