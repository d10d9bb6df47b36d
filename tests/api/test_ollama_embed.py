"""/api/embed takes Ollama's `options` (issue 33 item 6): langchain-ollama's
OllamaEmbeddings always sends them, every value null unless set; sampling options change no
embedding and are ignored, `num_ctx` is checked, an unknown option is still refused."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient
from langchain_ollama import OllamaEmbeddings

from browser_llm.config import DEFAULT_MODEL_ID
from tests.api.conftest import LiveServer

MODEL = DEFAULT_MODEL_ID


def test_langchain_ollama_embeddings(live_server: LiveServer, client: TestClient) -> None:
    texts = ["a cat", "the dog sleeps"]
    expected = client.post("/api/embed", json={"model": MODEL, "input": texts}).json()
    plain = OllamaEmbeddings(model=MODEL, base_url=live_server.url)
    assert plain.embed_documents(texts) == expected["embeddings"]
    assert plain.embed_query(texts[0]) == expected["embeddings"][0]
    tuned = OllamaEmbeddings(
        model=MODEL, base_url=live_server.url, num_ctx=2048, temperature=0.3, top_k=10
    )
    assert tuned.embed_documents(texts) == expected["embeddings"]


@pytest.mark.parametrize(
    "options",
    [
        {"num_ctx": 2048},
        {"mirostat": None, "num_ctx": None, "temperature": None, "top_p": None, "stop": None},
        {"temperature": 0.1, "mirostat": 2, "seed": 7, "num_thread": 2},
    ],
)
def test_options_that_change_no_embedding_are_accepted(
    client: TestClient, options: dict[str, Any]
) -> None:
    resp = client.post("/api/embed", json={"model": MODEL, "input": "hi", "options": options})
    assert resp.status_code == 200, resp.text
    assert len(resp.json()["embeddings"]) == 1


@pytest.mark.parametrize(
    ("options", "field"),
    [
        ({"num_ctx": 0}, "options.num_ctx"),
        ({"num_ctx": "big"}, "options.num_ctx"),
        ({"temprature": 0.1}, "options.temprature"),
    ],
)
def test_bad_options_are_a_400_naming_them(
    client: TestClient, options: dict[str, Any], field: str
) -> None:
    resp = client.post("/api/embed", json={"model": MODEL, "input": "hi", "options": options})
    assert resp.status_code == 400 and resp.json()["error"].startswith(field)
