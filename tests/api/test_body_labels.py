"""A JSON body is read as JSON whatever its Content-Type says (or without one), on every
route, as Ollama's and OpenAI's servers do: litellm's `ollama/` and `ollama_chat/` prefixes
send no Content-Type, and `curl -d` (Ollama's own examples) labels the body a form."""

from __future__ import annotations

import json
from typing import Any

import httpx
import litellm
import pytest
from fastapi.testclient import TestClient

from browser_llm.config import DEFAULT_MODEL_ID
from tests.api.conftest import LiveServer
from tests.fakes import FAKE_PIECES

# litellm's own pydantic models warn about themselves on import.
pytestmark = pytest.mark.filterwarnings("ignore::UserWarning:pydantic")

MODEL = DEFAULT_MODEL_ID
FAKE_TEXT = "".join(FAKE_PIECES)
QUESTION = [{"role": "user", "content": "hi"}]
FORM = "application/x-www-form-urlencoded"  # what curl -d sends


@pytest.mark.parametrize("prefix", ["ollama", "ollama_chat"])
def test_litellm_ollama_prefixes(live_server: LiveServer, prefix: str) -> None:
    answer: Any = litellm.completion(
        model=f"{prefix}/{MODEL}", messages=QUESTION, api_base=live_server.url, max_tokens=8
    )
    assert answer.choices[0].message.content == FAKE_TEXT
    streamed: Any = litellm.completion(
        model=f"{prefix}/{MODEL}",
        messages=QUESTION,
        api_base=live_server.url,
        max_tokens=8,
        stream=True,
    )
    assert "".join(c.choices[0].delta.content or "" for c in streamed) == FAKE_TEXT


BODIES = {
    "/api/generate": {"model": MODEL, "prompt": "hi", "stream": False},
    "/api/chat": {"model": MODEL, "messages": QUESTION, "stream": False},
    "/v1/chat/completions": {"model": MODEL, "messages": QUESTION},
    "/v1/completions": {"prompt": "hi"},
    "/api/v1/generate": {"prompt": "hi"},
}


@pytest.mark.parametrize("path", list(BODIES))
@pytest.mark.parametrize("label", [None, FORM, "text/plain"])
def test_any_label_is_read_as_json(client: TestClient, path: str, label: str | None) -> None:
    headers = {"Content-Type": label} if label else {}
    resp = client.post(path, content=json.dumps(BODIES[path]).encode(), headers=headers)
    assert resp.status_code == 200, resp.text
    assert FAKE_PIECES[0] in resp.text


def test_ollamas_curl_delete_example(client: TestClient) -> None:
    """curl -X DELETE .../api/delete -d '{"model": ...}': read as JSON (here: not on disk)."""
    body = json.dumps({"model": "no-such-model"}).encode()
    resp = client.request("DELETE", "/api/delete", content=body, headers={"Content-Type": FORM})
    assert resp.status_code == 404 and "not found" in resp.json()["error"]


def test_the_request_without_a_label_is_really_unlabelled(live_server: LiveServer) -> None:
    # httpx's content= sends no Content-Type: the case litellm's prefixes hit.
    body = json.dumps(BODIES["/api/chat"]).encode()
    request = httpx.Request("POST", f"{live_server.url}/api/chat", content=body)
    assert "content-type" not in request.headers
    with httpx.Client() as http:
        resp = http.send(request)
    assert resp.status_code == 200 and resp.json()["message"]["content"] == FAKE_TEXT


@pytest.mark.parametrize(
    ("path", "error_of"),
    [
        ("/api/chat", lambda body: body["error"]),  # Ollama's shape
        ("/v1/chat/completions", lambda body: body["error"]["message"]),  # OpenAI's
        ("/api/v1/generate", lambda body: body["error"]["message"]),  # the envelope
    ],
)
@pytest.mark.parametrize("label", [None, FORM])
def test_a_body_that_is_not_json_is_the_dialects_400(
    client: TestClient, path: str, error_of: Any, label: str | None
) -> None:
    headers = {"Content-Type": label} if label else {}
    resp = client.post(path, content=b"model=x&prompt=hi", headers=headers)
    assert resp.status_code == 400
    assert "not valid JSON" in error_of(resp.json())


def test_unlabelled_bodies_from_a_foreign_page_are_refused(client: TestClient) -> None:
    """Browsers send form and text bodies from any page without a CORS preflight: such a
    request from a foreign Origin is refused, as cross-origin WebSockets are."""
    body = json.dumps(BODIES["/api/generate"]).encode()
    evil = {"Origin": "https://evil.example.com", "Content-Type": "text/plain"}
    refused = client.post("/api/generate", content=body, headers=evil)
    assert refused.status_code == 403 and "cross-origin" in refused.json()["error"]
    local = {"Origin": "http://localhost:5173", "Content-Type": "text/plain"}
    assert client.post("/api/generate", content=body, headers=local).status_code == 200
    # A JSON label needs a preflight, which CORS answers: not this check's business.
    labelled = {"Origin": "https://evil.example.com", "Content-Type": "application/json"}
    assert client.post("/api/generate", content=body, headers=labelled).status_code == 200
