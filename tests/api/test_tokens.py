"""POST /tokenize and /detokenize: shapes, options and bounds (fake engine's byte vocabulary)."""

from __future__ import annotations

from fastapi.testclient import TestClient

from tests.fakes import FAKE_BOS, FakeEngine

API = "/api/v1"


def test_tokenize_and_detokenize_round_trip(client: TestClient, fake_engine: FakeEngine) -> None:
    resp = client.post(f"{API}/tokenize", json={"text": "héllo"})
    assert resp.status_code == 200
    data = resp.json()["data"]
    assert data["tokens"] == list("héllo".encode()) and data["count"] == len(data["tokens"])
    assert data["model"] == fake_engine.model.model_id  # type: ignore[union-attr]
    assert fake_engine.tokenized[-1] == ("héllo", False, True)  # the documented defaults
    back = client.post(f"{API}/detokenize", json={"tokens": [ord(c) for c in "abc"]})
    assert back.json()["data"]["text"] == "abc"


def test_special_token_options_reach_the_engine(
    client: TestClient, fake_engine: FakeEngine
) -> None:
    body = {"text": "x", "add_special": True, "parse_special": False}
    tokens = client.post(f"{API}/tokenize", json=body).json()["data"]["tokens"]
    assert tokens[0] == FAKE_BOS and fake_engine.tokenized[-1] == ("x", True, False)
    shown = client.post(f"{API}/detokenize", json={"tokens": tokens})
    hidden = client.post(f"{API}/detokenize", json={"tokens": tokens, "remove_special": True})
    assert shown.json()["data"]["text"] == "<s>x" and hidden.json()["data"]["text"] == "x"


def test_bad_input_is_400_in_the_envelope(client: TestClient) -> None:
    cases = [
        ("tokenize", {}),
        ("tokenize", {"text": 5}),
        ("tokenize", {"text": "a", "add_bos": True}),  # unknown field
        ("tokenize", {"text": "x" * 400_001}),
        ("detokenize", {"tokens": "1 2"}),
        ("detokenize", {"tokens": [-1]}),
        ("detokenize", {"tokens": [10**12]}),
        ("detokenize", {"tokens": [FAKE_BOS + 1]}),  # outside the vocabulary
        ("detokenize", {"tokens": [True]}),
    ]
    raw = '{"text": "\\ud800"}'  # a lone surrogate, as JSON can carry it
    resp = client.post(f"{API}/tokenize", content=raw, headers={"content-type": "application/json"})
    assert resp.status_code == 400 and resp.json()["error"]["details"]["field"] == "text"
    for route, body in cases:
        resp = client.post(f"{API}/{route}", json=body)
        assert resp.status_code == 400, (route, body, resp.status_code)
        assert resp.json()["error"]["code"] == "VALIDATION_ERROR"


def test_without_a_model_it_is_503(idle_client: TestClient) -> None:
    resp = idle_client.post(f"{API}/tokenize", json={"text": "hi"})
    assert resp.status_code == 503 and resp.json()["error"]["code"] == "MODEL_NOT_LOADED"


def test_the_browser_engine_refuses_clearly(client: TestClient) -> None:
    resp = client.post(f"{API}/tokenize", json={"text": "hi", "engine": "browser"})
    assert resp.status_code == 503  # no tab attached: no model there
    resp = client.post(f"{API}/detokenize", json={"tokens": [1], "engine": "browser"})
    assert resp.status_code == 503
