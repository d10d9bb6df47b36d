"""Budget-aware JSON closing on the real engine: every JSON answer parses (issue 25).

180 short generations (max_tokens 8-64, temperatures up to 1.5, JSON mode
and schemas), eight at a time: whatever the model samples and whatever the CPU's
rounding, each answer parses, and each schema answer validates. Nothing here
depends on what the model writes.
"""

from __future__ import annotations

import concurrent.futures
import itertools
import json
from typing import Any

import httpx
import jsonschema
from websockets.sync.client import connect

from tests.e2e.conftest import Server
from tests.e2e.helpers import generate, stream_events

PROMPTS = [
    "Describe a cat as JSON.",
    "Make a JSON object for a user profile.",
    "Write a long JSON document about a library with nested objects.",
]

PERSON: dict[str, Any] = {
    "type": "object",
    "properties": {
        "name": {"type": "string", "maxLength": 40},
        "age": {"type": "integer", "minimum": 0, "maximum": 120},
        "role": {"enum": ["admin", "user", "guest"]},
        "tags": {"type": "array", "items": {"type": "string"}, "maxItems": 3},
        "address": {
            "type": "object",
            "properties": {"city": {"type": "string"}, "zip": {"type": "string"}},
            "required": ["city"],
            "additionalProperties": False,
        },
    },
    "required": ["name", "age", "role", "address"],
    "additionalProperties": False,
}
# Schemas whose every keyword the grammar enforces: their answers must validate.
SCHEMAS: list[dict[str, Any]] = [
    PERSON,
    {
        "type": "array",
        "items": {
            "type": "object",
            "properties": {"item": {"type": "string"}, "count": {"type": "integer"}},
            "required": ["item", "count"],
        },
        "minItems": 1,
    },
    {
        "type": "object",
        "properties": {
            "day": {"type": "string", "format": "date"},
            "id": {"type": "string", "format": "uuid"},
            "code": {"type": "string", "pattern": "^[A-Z]{2}-\\d{3}$"},
        },
        "required": ["day", "code"],
    },
    {"type": "string", "minLength": 3, "maxLength": 50},
]
MAX_TOKENS = [8, 16, 32, 64]
TEMPERATURES = [0.0, 0.8, 1.5]


def _ask(api: httpx.Client, body: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    resp = api.post("/generate", json=body)
    assert resp.status_code in (200, 400), resp.text
    return body, resp.json()


def _run_all(api: httpx.Client, bodies: list[dict[str, Any]]) -> list[Any]:
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        return list(pool.map(lambda b: _ask(api, b), bodies))


def _check(body: dict[str, Any], data: dict[str, Any]) -> None:
    report = data["json"]
    value = json.loads(data["text"])  # parses, whatever happened
    assert report["complete"] is True and report["value"] == value, (body, data)
    assert data["usage"]["completion_tokens"] <= body["max_tokens"]
    if report["closed_early"]:
        assert data["finish_reason"] == "length", (body, data)
    if "json_schema" in body:
        jsonschema.validate(value, body["json_schema"], format_checker=jsonschema.FormatChecker())
        assert report["valid"] is True, (body, data)


def test_every_short_json_answer_parses(api: httpx.Client) -> None:
    bodies: list[dict[str, Any]] = []
    seeds = itertools.count(1)
    for prompt, max_tokens, temperature in itertools.product(PROMPTS, MAX_TOKENS, TEMPERATURES):
        common = {"prompt": prompt, "max_tokens": max_tokens, "temperature": temperature}
        bodies.append({**common, "json_mode": True, "seed": next(seeds)})
        for schema in SCHEMAS:
            bodies.append({**common, "json_schema": schema, "seed": next(seeds)})
    results = _run_all(api, bodies)
    closed = refused = 0
    for body, answer in results:
        if "error" in answer:  # only a schema whose shortest answer is over max_tokens
            error = answer["error"]
            assert error["code"] == "VALIDATION_ERROR", answer
            assert error["details"]["minimum"] > body["max_tokens"], answer
            refused += 1
            continue
        _check(body, answer["data"])
        closed += answer["data"]["json"]["closed_early"]
    assert len(results) == 180
    print(f"JSON closing run: {len(results)} requests, {closed} closed early, {refused} refused")
    assert closed > 0 and refused < len(results) / 2, (closed, refused)


def test_closing_streams_like_the_answer(api: httpx.Client) -> None:
    body = {"prompt": PROMPTS[-1], "json_mode": True, "max_tokens": 12, "temperature": 0}
    events = stream_events(api, **body)
    streamed = "".join(e["data"]["token"] for e in events if e["type"] == "token")
    done = events[-1]["data"]["completion"]
    assert streamed == done["text"] == generate(api, **body)["text"]
    json.loads(streamed)
    assert done["json"]["complete"] is True


def test_closing_over_websocket(server: Server) -> None:
    url = server.base_url.replace("http://", "ws://") + "/ws"
    payload = {"prompt": PROMPTS[-1], "json_schema": PERSON, "max_tokens": 30, "temperature": 1}
    with connect(url) as ws:
        ws.send(json.dumps({"type": "generate", "id": "j", "payload": payload}))
        while True:
            message = json.loads(ws.recv(timeout=60))
            if message["type"] != "token":
                break
    assert message["type"] == "done", message
    completion = message["data"]["completion"]
    jsonschema.validate(json.loads(completion["text"]), PERSON)
    assert completion["json"]["valid"] is True


def test_closing_on_openai_response_format(server: Server) -> None:
    url = server.base_url.replace("/api/v1", "/v1") + "/chat/completions"
    for fmt in (
        {"type": "json_object"},
        {"type": "json_schema", "json_schema": {"name": "person", "schema": PERSON}},
    ):
        resp = httpx.post(
            url,
            json={
                "messages": [{"role": "user", "content": PROMPTS[-1]}],
                "max_tokens": 40,
                "temperature": 1.2,
                "response_format": fmt,
            },
            timeout=120,
        )
        assert resp.status_code == 200, resp.text
        json.loads(resp.json()["choices"][0]["message"]["content"])


def test_max_tokens_below_the_shortest_answer_is_refused(api: httpx.Client) -> None:
    resp = api.post("/generate", json={"prompt": "x", "json_schema": PERSON, "max_tokens": 5})
    assert resp.status_code == 400, resp.text
    error = resp.json()["error"]
    assert error["code"] == "VALIDATION_ERROR" and "max_tokens" in error["message"]
    assert error["details"]["minimum"] > 5
