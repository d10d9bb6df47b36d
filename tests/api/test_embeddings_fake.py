"""/v1/embeddings shapes on the fake engine (the real one: tests/e2e/test_embeddings.py)."""

from __future__ import annotations

from fastapi.testclient import TestClient

from browser_llm.config import DEFAULT_MODEL_ID


def test_shape_and_usage(client: TestClient) -> None:
    resp = client.post("/v1/embeddings", json={"model": DEFAULT_MODEL_ID, "input": ["a b", "c"]})
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert body["object"] == "list" and body["model"] == DEFAULT_MODEL_ID
    assert [d["index"] for d in body["data"]] == [0, 1]
    assert all(d["object"] == "embedding" for d in body["data"])
    assert body["usage"] == {"prompt_tokens": 3, "total_tokens": 3}


def test_bad_input_is_openai_shaped_400(client: TestClient) -> None:
    for body, param in (
        ({"input": []}, "input"),
        ({"input": [[1, 2, 300]]}, "input"),  # the fake vocabulary is 257 ids
        ({"input": [[]]}, "input"),
        ({"input": [1, "x"]}, "input"),
        ({"input": "x", "encoding_format": "int8"}, "encoding_format"),
        ({"input": "x", "made_up": 1}, "made_up"),
        ({"input": ["x"] * 300}, "input"),
    ):
        resp = client.post("/v1/embeddings", json=body)
        assert resp.status_code == 400, (body, resp.text)
        error = resp.json()["error"]
        assert error["type"] == "invalid_request_error" and error["param"] == param, error


def test_token_arrays_are_embedded(client: TestClient) -> None:
    one = client.post("/v1/embeddings", json={"input": [1, 2, 3]}).json()
    assert len(one["data"]) == 1 and one["usage"]["prompt_tokens"] == 3
    two = client.post("/v1/embeddings", json={"input": [[1, 2], [3, 4, 5]]}).json()
    assert [d["index"] for d in two["data"]] == [0, 1] and two["usage"]["prompt_tokens"] == 5


def test_no_model_loaded_is_503(idle_client: TestClient) -> None:
    resp = idle_client.post("/v1/embeddings", json={"input": "x"})
    assert resp.status_code == 503 and resp.json()["error"]["code"] == "MODEL_NOT_LOADED"
