"""Model endpoints end to end through the app (fake engine; real downloads, checks, probe)."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from browser_llm.api.app import create_app
from browser_llm.config import DEFAULT_MODEL_ID, Settings
from browser_llm.engine.prompt_store import model_dir_name
from tests.api.conftest import LOCAL
from tests.fakes import FakeEngine
from tests.modelfiles import FileServer, gguf, kv_str, serve_files, sha256_of, smollm2_path

API = "/api/v1"


@pytest.fixture(scope="module")
def files() -> Iterator[FileServer]:
    with serve_files({"smol.gguf": smollm2_path()}) as server:
        yield server


def add_models(models_dir: Path, *entries: dict[str, Any]) -> None:
    models_dir.mkdir(parents=True, exist_ok=True)
    raws = [
        {
            "name": e["id"],
            "size_bytes": smollm2_path().stat().st_size,
            "vram_required": "1GB",
            "speed_tier": "fast",
            "quality_tier": "basic",
            **e,
        }
        for e in entries
    ]
    (models_dir / "user-models.json").write_text(json.dumps({"models": raws}))


def make_client(tmp_path: Path, **settings: Any) -> TestClient:
    config = Settings(models_dir=tmp_path / "models", **settings)
    return TestClient(create_app(config, engine=FakeEngine()), base_url=LOCAL)


def wait_loaded(client: TestClient, model_id: str, timeout_s: float = 120) -> dict[str, Any]:
    """Polls POST /load as the SDKs do, until it stops saying 'loading'."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        resp = client.post(f"{API}/models/{model_id}/load")
        if resp.status_code != 200 or resp.json()["data"]["status"] != "loading":
            return {"status_code": resp.status_code, **resp.json()}
        time.sleep(0.05)
    raise AssertionError("load did not finish")


HOSTILE = ["UPPER", ".hidden", "a..b", "x" * 65, "..", "%2e%2e%2fetc", "a%2fb", "a%5cb", "sp%20ace"]


@pytest.mark.parametrize("model_id", HOSTILE)
def test_hostile_ids_get_4xx(client: TestClient, model_id: str) -> None:
    for method, path in (
        ("GET", f"{API}/models/{model_id}"),
        ("POST", f"{API}/models/{model_id}/load"),
        ("POST", f"{API}/models/{model_id}/unload"),
        ("DELETE", f"{API}/models/{model_id}"),
    ):
        resp = client.request(method, path)
        assert 400 <= resp.status_code < 500, (method, path, resp.status_code)
        assert resp.json()["success"] is False
    assert client.post(f"{API}/generate", json={"prompt": "hi"}).status_code == 200


def test_load_answers_at_once_and_status_says_loading(tmp_path: Path) -> None:
    with make_client(tmp_path, model="none") as client:
        first = client.post(f"{API}/models/{DEFAULT_MODEL_ID}/load").json()["data"]
        assert first["status"] == "loading"
        assert 0 <= first["progress"] < 1
        assert first["estimated_time_ms"] >= 0
        assert first["phase"] in ("fetching", "checking", "loading")
        status = client.get(f"{API}/status").json()["data"]
        assert status["status"] == "loading"
        assert status["loading"]["model_id"] == DEFAULT_MODEL_ID
        # A generate while nothing is loaded yet: a clear 503 naming the load.
        resp = client.post(f"{API}/generate", json={"prompt": "hi"})
        assert resp.status_code == 503
        assert resp.json()["error"]["code"] == "MODEL_NOT_LOADED"
        assert resp.json()["error"]["details"]["loading"] == DEFAULT_MODEL_ID
        assert int(resp.headers["Retry-After"]) >= 1
        done = wait_loaded(client, DEFAULT_MODEL_ID)
        assert done["data"] == {
            "model_id": DEFAULT_MODEL_ID,
            "status": "loaded",
            "progress": 1.0,
            "estimated_time_ms": 0.0,
            "phase": "done",
        }  # optional fields with nothing to say are left out, not null
        status = client.get(f"{API}/status").json()["data"]
        assert status["status"] == "ready" and status["loading"] is None
        assert client.post(f"{API}/generate", json={"prompt": "hi"}).status_code == 200


def test_crafted_files_fail_to_load_and_the_previous_model_keeps_serving(
    tmp_path: Path,
) -> None:
    models = tmp_path / "models"
    models.mkdir()
    truncated = models / "truncated.bin"
    truncated.write_bytes(smollm2_path().read_bytes()[:5_000_000])
    # Passes the header check (valid GGUF, no tensors) but is no model: llama.cpp refuses
    # it in the probe process, never in the server.
    hollow = models / "hollow.bin"
    hollow.write_bytes(gguf([kv_str("general.architecture", "llama")]))
    add_models(
        models,
        {"id": "truncated", "source": {"type": "file", "file": str(truncated)}},
        {"id": "hollow", "source": {"type": "file", "file": str(hollow)}},
    )
    with make_client(tmp_path) as client:
        resp = client.post(f"{API}/models/truncated/load")
        assert resp.status_code == 500
        error = resp.json()["error"]
        assert error["code"] == "MODEL_LOAD_FAILED"
        assert (
            error["details"]["reason"] == "invalid_gguf"
            and "truncated" in error["details"]["problem"]
        )

        assert client.post(f"{API}/models/hollow/load").json()["data"]["status"] == "loading"
        failed = wait_loaded(client, "hollow")
        # The spec's load status says "error", with the cause, to every poll...
        assert failed["status_code"] == 200 and failed["data"]["status"] == "error"
        assert failed["data"]["error"]["code"] == "MODEL_LOAD_FAILED"
        assert failed["data"]["error"]["details"]["reason"] == "probe_rejected"
        again = client.post(f"{API}/models/hollow/load").json()["data"]
        assert again["status"] == "error" and again["error"] == failed["data"]["error"]
        # ...and a load that asks to retry starts again.
        retried = client.post(f"{API}/models/hollow/load", params={"retry": "true"})
        assert retried.json()["data"]["status"] == "loading"
        assert wait_loaded(client, "hollow")["data"]["status"] == "error"
        status = client.get(f"{API}/status").json()["data"]
        # The default model still serves, so the server is ready; the failure is reported.
        assert status["status"] == "ready" and status["load_error"]["model_id"] == "hollow"

        status = client.get(f"{API}/status").json()["data"]
        assert status["model"]["id"] == DEFAULT_MODEL_ID and status["status"] == "ready"
        resp = client.post(f"{API}/generate", json={"prompt": "still here?"})
        assert resp.status_code == 200 and resp.json()["data"]["model"] == DEFAULT_MODEL_ID


def test_download_through_the_api_then_delete(tmp_path: Path, files: FileServer) -> None:
    sha = sha256_of(smollm2_path())
    add_models(
        tmp_path / "models",
        {
            "id": "remote",
            "source": {"type": "url", "url": files.url("drop", "smol.gguf")},
            "sha256": sha,
        },
    )
    with make_client(tmp_path) as client:
        before = client.get(f"{API}/models/remote").json()["data"]
        assert before["downloaded"] is False and "download_progress" not in before  # spec: `?`
        started = client.post(f"{API}/models/remote/load").json()["data"]
        assert started["status"] == "loading" and started["phase"] == "fetching"
        same = client.post(f"{API}/models/remote/load").json()["data"]
        assert same["status"] == "loading"  # the same job, not a second download
        done = wait_loaded(client, "remote")
        assert done["data"]["status"] == "loaded", done
        details = client.get(f"{API}/models/remote").json()["data"]
        assert details["downloaded"] is True and details["download_progress"] == 1.0
        assert details["loaded"] is True and details["source"] == "url"
        stored = tmp_path / "models" / "remote.gguf"
        assert sha256_of(stored) == sha
        assert sum(1 for r in files.gets("drop", "smol.gguf") if r is None) == 1
        assert (
            client.post(f"{API}/generate", json={"prompt": "hi"}).json()["data"]["model"]
            == "remote"
        )

        # Prompts the engine saved for it (and for another model) in the prompt cache.
        cache = tmp_path / "prompt-cache"
        for model_id in ("remote", DEFAULT_MODEL_ID):
            (cache / model_dir_name(model_id)).mkdir(parents=True)
            (cache / model_dir_name(model_id) / "k-h.kv").write_bytes(b"saved")
        deleted = client.delete(f"{API}/models/remote").json()["data"]
        size = smollm2_path().stat().st_size
        assert deleted == {"model_id": "remote", "deleted": True, "freed_bytes": size}
        assert not stored.exists()
        assert not (cache / model_dir_name("remote")).exists()
        assert (cache / model_dir_name(DEFAULT_MODEL_ID) / "k-h.kv").exists()
        # A model the user added is forgotten too; built-in ones stay listed.
        assert client.get(f"{API}/models/remote").status_code == 404
        assert client.get(f"{API}/status").json()["data"]["status"] == "idle"


def test_bad_checksum_through_the_api(tmp_path: Path, files: FileServer) -> None:
    add_models(
        tmp_path / "models",
        {
            "id": "corrupt",
            "source": {"type": "url", "url": files.url("wrong", "smol.gguf")},
            "sha256": sha256_of(smollm2_path()),
        },
    )
    with make_client(tmp_path) as client:
        assert client.post(f"{API}/models/corrupt/load").json()["data"]["status"] == "loading"
        failed = wait_loaded(client, "corrupt")
        assert failed["status_code"] == 200 and failed["data"]["status"] == "error"
        assert failed["data"]["error"]["code"] == "STORAGE_ERROR"
        assert failed["data"]["error"]["details"]["reason"] == "checksum_mismatch"
        assert list((tmp_path / "models").glob("corrupt*")) == []  # no partial, no lock
        assert client.get(f"{API}/status").json()["data"]["model"]["id"] == DEFAULT_MODEL_ID


def test_quota_refuses_a_download_at_once(tmp_path: Path, files: FileServer) -> None:
    add_models(
        tmp_path / "models",
        {"id": "big", "source": {"type": "url", "url": files.url("ok", "smol.gguf")}},
    )
    with make_client(tmp_path, storage_quota_gb=0.1) as client:
        resp = client.post(f"{API}/models/big/load")
        assert resp.status_code == 507
        error = resp.json()["error"]
        assert error["code"] == "STORAGE_ERROR" and error["details"]["reason"] == "quota"
        status = client.get(f"{API}/status").json()["data"]["system"]
        assert status["storage_quota_gb"] == pytest.approx(0.1, abs=0.001)
        assert status["storage_used_gb"] > 0.05


def test_hub_model_without_room_and_packaged_delete(client: TestClient) -> None:
    details = client.get(f"{API}/models/phi-3-mini-q4").json()["data"]
    assert details["downloaded"] is False and details["source"] == "url"
    assert details["name"] == "Phi-3 Mini (Q4)"
    models = {m["id"]: m for m in client.get(f"{API}/models").json()["data"]["models"]}
    assert models["gemma3-270m-q4"]["downloaded"] is True  # installed chunk packages
    assert "chat" not in models["gemma3-270m-q4"]["capabilities"]
    # A file inside a pip package is not ours to delete; the model keeps serving.
    resp = client.delete(f"{API}/models/{DEFAULT_MODEL_ID}")
    assert resp.status_code == 400 and resp.json()["error"]["details"]["reason"] == "packaged"
    assert client.post(f"{API}/generate", json={"prompt": "hi"}).status_code == 200


def test_performance_is_per_model(client: TestClient) -> None:
    client.post(f"{API}/generate", json={"prompt": "hi"})
    mine = client.get(f"{API}/models/{DEFAULT_MODEL_ID}").json()["data"]["performance"]
    other = client.get(f"{API}/models/gemma3-270m-q4").json()["data"]["performance"]
    assert mine["avg_latency_ms"] > 0
    assert other == {"avg_tokens_per_second": 0.0, "avg_latency_ms": 0.0}


def test_a_failed_load_with_nothing_serving_reads_error_until_retried(tmp_path: Path) -> None:
    models = tmp_path / "models"
    models.mkdir()
    hollow = models / "hollow.bin"
    hollow.write_bytes(gguf([kv_str("general.architecture", "llama")]))
    add_models(models, {"id": "hollow", "source": {"type": "file", "file": str(hollow)}})
    with make_client(tmp_path, model="none") as client:
        assert wait_loaded(client, "hollow")["data"]["status"] == "error"
        # A client polling /status for "error" (the spec's enum) sees it, with the cause.
        for _ in range(3):
            status = client.get(f"{API}/status").json()["data"]
            assert status["status"] == "error" and status["model"] is None
            assert status["load_error"]["code"] == "MODEL_LOAD_FAILED"
        assert wait_loaded(client, DEFAULT_MODEL_ID)["data"]["status"] == "loaded"
        assert client.get(f"{API}/status").json()["data"]["status"] == "ready"
