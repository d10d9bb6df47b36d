"""Every bad input is a 400 VALIDATION_ERROR in the envelope, naming the field."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

BAD_BODIES: list[tuple[dict[str, Any], str]] = [
    ({}, "prompt"),
    ({"prompt": ""}, "prompt"),
    ({"prompt": 5}, "prompt"),
    ({"prompt": "x", "max_tokens": 0}, "max_tokens"),
    ({"prompt": "x", "max_tokens": 4097}, "max_tokens"),
    ({"prompt": "x", "max_tokens": "10"}, "max_tokens"),
    ({"prompt": "x", "max_tokens": 1.5}, "max_tokens"),
    ({"prompt": "x", "temperature": -0.1}, "temperature"),
    ({"prompt": "x", "temperature": 2.5}, "temperature"),
    ({"prompt": "x", "temperature": "hot"}, "temperature"),
    ({"prompt": "x", "temperature": True}, "temperature"),
    ({"prompt": "x", "top_p": 1.5}, "top_p"),
    ({"prompt": "x", "top_k": 0}, "top_k"),
    ({"prompt": "x", "top_k": 101}, "top_k"),
    ({"prompt": "x", "frequency_penalty": 3}, "frequency_penalty"),
    ({"prompt": "x", "presence_penalty": -1}, "presence_penalty"),
    ({"prompt": "x", "stop": [1]}, "stop"),
    ({"prompt": "x", "stop": [""]}, "stop"),
    ({"prompt": "x", "stop": ["a"] * 9}, "stop"),
    ({"prompt": "x", "stream": "yes"}, "stream"),
    ({"prompt": "x", "seed": -1}, "seed"),
    ({"prompt": "x", "unknown_field": 1}, "unknown_field"),
]


@pytest.mark.parametrize(("body", "field"), BAD_BODIES)
def test_bad_field_is_validation_error(
    client: TestClient, body: dict[str, Any], field: str
) -> None:
    resp = client.post("/api/v1/generate", json=body)
    assert resp.status_code == 400, resp.text
    payload = resp.json()
    assert payload["success"] is False
    assert payload["error"]["code"] == "VALIDATION_ERROR"
    assert payload["error"]["details"]["field"].startswith(field)
    assert field in payload["error"]["message"]
    assert payload["metadata"]["requestId"].startswith("req_")


def test_invalid_json_is_validation_error(client: TestClient) -> None:
    resp = client.post(
        "/api/v1/generate", content=b"{not json", headers={"Content-Type": "application/json"}
    )
    assert resp.status_code == 400
    assert resp.json()["error"]["code"] == "VALIDATION_ERROR"
    assert "JSON" in resp.json()["error"]["message"]


def test_body_must_be_an_object(client: TestClient) -> None:
    resp = client.post("/api/v1/generate", json=["prompt"])
    assert resp.status_code == 400
    assert resp.json()["error"]["code"] == "VALIDATION_ERROR"


def test_unknown_route_is_enveloped_404(client: TestClient) -> None:
    resp = client.get("/api/v1/nope")
    assert resp.status_code == 404
    assert resp.json()["error"]["code"] == "NOT_FOUND"
    assert resp.json()["success"] is False


def test_wrong_method_is_enveloped_405(client: TestClient) -> None:
    resp = client.get("/api/v1/generate")
    assert resp.status_code == 405
    assert resp.json()["error"]["code"] == "METHOD_NOT_ALLOWED"
