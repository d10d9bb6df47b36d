"""The /engine page, its files and the model-file route (no browser needed)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from browser_llm.api.app import create_app
from browser_llm.api.spec.engine_page import wllama_root
from browser_llm.config import Settings
from tests.fakes import FakeEngine

LOCAL = "http://127.0.0.1:3000"
MODEL = "smollm2-135m-instruct-q4"
MODEL_URL = f"/api/v1/engine/models/{MODEL}/model.gguf"


def _client(tmp_path: Path, **settings: object) -> TestClient:
    config = Settings(models_dir=tmp_path / "models", **settings)  # type: ignore[arg-type]
    return TestClient(create_app(config, engine=FakeEngine()), base_url=LOCAL)


@pytest.fixture
def client(tmp_path: Path) -> Iterator[TestClient]:
    with _client(tmp_path) as test_client:
        yield test_client


def test_wllama_is_installed_by_the_setup() -> None:
    # `make test` runs `npm ci` in web-engine/; the page is useless without it.
    root = wllama_root(Settings())
    assert (root / "esm" / "index.js").is_file()
    assert (root / "esm" / "wasm" / "wllama.wasm").is_file()


def test_page_is_cross_origin_isolated(client: TestClient) -> None:
    resp = client.get("/engine")
    assert resp.status_code == 200
    assert resp.headers["content-type"].startswith("text/html")
    assert resp.headers["cross-origin-opener-policy"] == "same-origin"
    assert resp.headers["cross-origin-embedder-policy"] == "require-corp"
    assert "/engine/app/engine.js" in resp.text


def test_vendor_files_have_their_mime_types_and_corp(client: TestClient) -> None:
    wasm = client.get("/engine/vendor/wasm/wllama.wasm")
    assert wasm.status_code == 200
    assert wasm.headers["content-type"] == "application/wasm"
    assert wasm.headers["cross-origin-resource-policy"] == "same-origin"
    assert wasm.content[:4] == b"\0asm"
    js = client.get("/engine/vendor/index.js")
    assert js.headers["content-type"].startswith("text/javascript")
    own = client.get("/engine/app/engine.js")
    assert own.status_code == 200
    assert "api/v1/engine/attach" in own.text


@pytest.mark.parametrize(
    "path",
    [
        "/engine/vendor/../package.json",
        "/engine/vendor/%2e%2e/package.json",
        "/engine/vendor/index.d.ts",
        "/engine/app/../index.html",
        "/engine/app/nope.js",
    ],
)
def test_only_engine_files_are_served(client: TestClient, path: str) -> None:
    assert client.get(path).status_code == 404


def test_missing_wllama_gives_a_clear_page_and_the_rest_works(tmp_path: Path) -> None:
    with _client(tmp_path, wllama_dir=tmp_path / "absent") as client:
        page = client.get("/engine")
        assert page.status_code == 503
        assert "npm ci" in page.text
        assert client.get("/api/v1/status").status_code == 200


def test_model_file_supports_range_requests(client: TestClient) -> None:
    whole = client.head(MODEL_URL)
    assert whole.status_code == 200
    size = int(whole.headers["content-length"])
    assert size > 1_000_000
    part = client.get(MODEL_URL, headers={"Range": "bytes=0-3"})
    assert part.status_code == 206
    assert part.content == b"GGUF"
    assert part.headers["content-range"] == f"bytes 0-3/{size}"


def test_model_file_is_same_origin_only(client: TestClient) -> None:
    resp = client.get(MODEL_URL, headers={"Sec-Fetch-Site": "cross-site", "Range": "bytes=0-3"})
    assert resp.status_code == 403
    assert resp.json()["error"]["code"] == "FORBIDDEN"


@pytest.mark.parametrize(
    ("model_id", "status", "code"),
    [("unknown-model", 404, "NOT_FOUND"), ("bad%20id", 400, "VALIDATION_ERROR")],
)
def test_model_file_validates_the_id(
    client: TestClient, model_id: str, status: int, code: str
) -> None:
    resp = client.get(f"/api/v1/engine/models/{model_id}/model.gguf")
    assert resp.status_code == status
    assert resp.json()["error"]["code"] == code


def test_api_key_guards_model_files_and_attach_but_not_the_page(tmp_path: Path) -> None:
    with _client(tmp_path, api_key="k3y") as client:
        assert client.get("/engine").status_code == 200
        assert client.get(MODEL_URL, headers={"Range": "bytes=0-3"}).status_code == 401
        ok = client.get(MODEL_URL, headers={"Range": "bytes=0-3", "Authorization": "Bearer k3y"})
        assert ok.status_code == 206


def test_unknown_engine_name_is_a_validation_error(client: TestClient) -> None:
    resp = client.post("/api/v1/generate", json={"prompt": "hi", "engine": "gpu"})
    assert resp.status_code == 400
    assert resp.json()["error"]["details"]["field"] == "engine"
