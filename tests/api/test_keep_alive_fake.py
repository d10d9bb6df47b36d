"""keep_alive and the loaded-models views with the fake engine (one model, the default)."""

from __future__ import annotations

import time
from pathlib import Path

from fastapi.testclient import TestClient

from browser_llm.api.app import create_app
from browser_llm.api.ollama.views import FOREVER
from browser_llm.config import DEFAULT_MODEL_ID, Settings
from tests.api.conftest import LOCAL
from tests.fakes import FakeEngine

API = "/api/v1"
MODEL = DEFAULT_MODEL_ID


def until_unloaded(client: TestClient, timeout_s: float = 5.0) -> None:
    deadline = time.monotonic() + timeout_s
    while client.get(f"{API}/status").json()["data"]["models_loaded"]:
        assert time.monotonic() < deadline, "the model did not unload"
        time.sleep(0.02)


def test_default_model_stays_for_ever(client: TestClient) -> None:
    status = client.get(f"{API}/status").json()["data"]
    assert status["max_loaded_models"] == 1
    (loaded,) = status["models_loaded"]
    assert loaded["id"] == MODEL == status["model"]["id"]
    assert loaded["keep_alive_s"] == -1 and loaded["expires_at"] is None
    assert loaded["busy"] is False and loaded["pid"] is None  # the fake has no process
    (ps,) = client.get("/api/ps").json()["models"]
    assert ps["expires_at"] == FOREVER and ps["size_vram"] == 0


def test_keep_alive_on_the_seed_api_sets_the_expiry(client: TestClient) -> None:
    body = {"prompt": "hi", "max_tokens": 2, "keep_alive": "10m"}
    assert client.post(f"{API}/generate", json=body).status_code == 200
    (loaded,) = client.get(f"{API}/status").json()["data"]["models_loaded"]
    assert loaded["keep_alive_s"] == 600
    bad = client.post(f"{API}/generate", json={**body, "keep_alive": "soon"})
    assert bad.status_code == 400 and bad.json()["error"]["details"]["field"] == "keep_alive"


def test_keep_alive_0_unloads_the_model_after_the_request(client: TestClient) -> None:
    body = {"model": MODEL, "prompt": "hi", "stream": False, "keep_alive": 0}
    assert client.post("/api/generate", json=body).json()["done"] is True
    until_unloaded(client)
    assert client.get("/api/ps").json()["models"] == []
    # A request naming it loads it again (on demand), with the server's default.
    chat = {"model": MODEL, "messages": [{"role": "user", "content": "hi"}], "stream": False}
    assert client.post("/api/chat", json=chat).status_code == 200
    assert len(client.get("/api/ps").json()["models"]) == 1


def test_a_request_naming_no_model_reloads_what_keep_alive_unloaded(client: TestClient) -> None:
    body = {"prompt": "hi", "max_tokens": 2, "keep_alive": 0}
    assert client.post(f"{API}/generate", json=body).status_code == 200
    until_unloaded(client)
    # Not a 503 for every later client: the model the clock unloaded loads again.
    again = client.post(f"{API}/generate", json={"prompt": "hi", "max_tokens": 2})
    assert again.status_code == 200, again.text
    (loaded,) = client.get(f"{API}/status").json()["data"]["models_loaded"]
    assert loaded["id"] == MODEL and loaded["keep_alive_s"] == -1
    # An explicit unload stays: the next request is told to load a model.
    assert client.post(f"{API}/models/{MODEL}/unload").status_code == 200
    after = client.post(f"{API}/generate", json={"prompt": "hi", "max_tokens": 2})
    assert after.status_code == 503 and after.json()["error"]["code"] == "MODEL_NOT_LOADED"


def test_server_default_keep_alive(tmp_path: Path) -> None:
    settings = Settings(models_dir=tmp_path / "models", keep_alive="0.3s")
    with TestClient(create_app(settings, engine=FakeEngine()), base_url=LOCAL) as client:
        (ps,) = client.get("/api/ps").json()["models"]
        assert ps["expires_at"] != FOREVER
        until_unloaded(client)
        assert client.get("/v1/models").json()["data"][0]["loaded"] is False
