"""Models with the real engine: switching packaged models, crafted files, a real download."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from browser_llm.config import DEFAULT_MODEL_ID
from browser_llm.models.gguf_check import check_gguf
from tests.e2e.conftest import Server, served
from tests.modelfiles import gguf, kv_str, serve_files, sha256_of, smollm2_path, with_u32

pytestmark = pytest.mark.e2e

GEMMA = "gemma3-270m-q4"


def load(api: httpx.Client, model_id: str, timeout_s: float = 300) -> httpx.Response:
    """POST /load until it stops saying 'loading' (the SDKs do the same)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        resp = api.post(f"/models/{model_id}/load")
        if resp.status_code != 200 or resp.json()["data"]["status"] != "loading":
            return resp
        time.sleep(0.1)
    raise AssertionError(f"{model_id} did not load")


def greedy(api: httpx.Client, prompt: str) -> dict[str, Any]:
    resp = api.post("/generate", json={"prompt": prompt, "max_tokens": 12, "temperature": 0})
    assert resp.status_code == 200, resp.text
    data: dict[str, Any] = resp.json()["data"]
    return data


def write_user_models(models_dir: Path, entries: list[dict[str, Any]]) -> None:
    models_dir.mkdir(parents=True, exist_ok=True)
    common = {
        "size_bytes": 1,
        "vram_required": "1GB",
        "speed_tier": "fast",
        "quality_tier": "basic",
    }
    raws = [{"name": e["id"], **common, **e} for e in entries]
    (models_dir / "user-models.json").write_text(json.dumps({"models": raws}))


@pytest.fixture(scope="module")
def models_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    tmp = tmp_path_factory.mktemp("models-e2e")
    with served(tmp, BROWSER_LLM_CONTEXT_SIZE="1024", BROWSER_LLM_PARALLEL="1") as srv:
        yield srv


@pytest.fixture
def api(models_server: Server) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=models_server.base_url, timeout=120) as client:
        yield client


def test_switch_between_the_two_packaged_models(api: httpx.Client) -> None:
    smol_text = greedy(api, "Name a colour.")["text"]
    started = api.post(f"/models/{GEMMA}/load").json()["data"]
    assert started["status"] == "loading"
    assert load(api, GEMMA).json()["data"]["status"] == "loaded"
    status = api.get("/status").json()["data"]
    assert status["model"] == {"id": GEMMA, "loaded": True} and status["status"] == "ready"
    # A base model without a chat template: the plain prompt goes in as it is.
    answer = greedy(api, "The capital of France is")
    assert answer["model"] == GEMMA and answer["tokens"] > 0 and answer["text"].strip()
    assert answer["usage"]["prompt_tokens"] <= 8  # no chat scaffolding was added
    # Chat messages become a plain "role: text" transcript the base model continues.
    root = str(api.base_url).removesuffix("/").removesuffix("/api/v1")
    chat = httpx.post(
        f"{root}/v1/chat/completions",
        json={"model": GEMMA, "messages": [{"role": "user", "content": "Hi"}], "max_tokens": 4},
        timeout=120,
    )
    assert chat.status_code == 200, chat.text
    assert chat.json()["usage"]["prompt_tokens"] < 12
    perf = api.get(f"/models/{GEMMA}").json()["data"]["performance"]
    assert perf["avg_latency_ms"] > 0
    assert load(api, DEFAULT_MODEL_ID).json()["data"]["status"] == "loaded"
    again = greedy(api, "Name a colour.")
    assert again["model"] == DEFAULT_MODEL_ID and again["text"] == smol_text


def test_crafted_files_never_reach_the_server_process(
    api: httpx.Client, models_server: Server, tmp_path: Path
) -> None:
    real = smollm2_path().read_bytes()
    # llama.cpp aborts (SIGABRT) loading this one: a valid header, zero layers.
    crashing = tmp_path / "zero-layers.gguf"
    crashing.write_bytes(with_u32(real, "llama.block_count", 0))
    check_gguf(crashing)  # the header check cannot see the problem...
    truncated = tmp_path / "truncated.gguf"
    truncated.write_bytes(real[: len(real) // 3])
    hollow = tmp_path / "hollow.gguf"
    hollow.write_bytes(gguf([kv_str("general.architecture", "llama")]))
    models_dir = models_server.log.parent / "models"
    write_user_models(
        models_dir,
        [
            {"id": "crash", "source": {"type": "file", "file": str(crashing)}},
            {"id": "truncated", "source": {"type": "file", "file": str(truncated)}},
            {"id": "hollow", "source": {"type": "file", "file": str(hollow)}},
        ],
    )
    before = greedy(api, "Say hi.")
    resp = api.post("/models/truncated/load")
    assert resp.status_code == 500 and resp.json()["error"]["code"] == "MODEL_LOAD_FAILED"
    for model_id, reason in (("crash", "probe_crashed"), ("hollow", "probe_rejected")):
        resp = load(api, model_id)
        assert resp.status_code == 200, resp.text
        data = resp.json()["data"]
        assert data["status"] == "error", data  # the spec's load status, with the cause
        error = data["error"]
        assert error["code"] == "MODEL_LOAD_FAILED" and error["details"]["reason"] == reason
    # ...and the server is the same process, still serving the model it had.
    assert models_server.process.poll() is None
    status = api.get("/status").json()["data"]
    assert status["model"]["id"] == DEFAULT_MODEL_ID and status["status"] == "ready"
    assert greedy(api, "Say hi.")["text"] == before["text"]


def test_download_resume_probe_load_and_generate(api: httpx.Client, models_server: Server) -> None:
    sha = sha256_of(smollm2_path())
    with serve_files({"smol.gguf": smollm2_path()}) as files:
        write_user_models(
            models_server.log.parent / "models",
            [
                {
                    "id": "smol-download",
                    "source": {"type": "url", "url": files.url("drop", "smol.gguf")},
                    "sha256": sha,
                }
            ],
        )
        first = api.post("/models/smol-download/load").json()["data"]
        assert first["status"] == "loading" and first["phase"] == "fetching"
        seen_progress = api.get("/models/smol-download").json()["data"]
        assert seen_progress["downloaded"] is False or seen_progress["download_progress"] == 1.0
        assert load(api, "smol-download").json()["data"]["status"] == "loaded"
        assert any(r is not None for r in files.gets("drop", "smol.gguf"))  # resumed
    stored = models_server.log.parent / "models" / "smol-download.gguf"
    assert sha256_of(stored) == sha
    answer = greedy(api, "Name a colour.")
    assert answer["model"] == "smol-download"
    assert api.delete("/models/smol-download").json()["data"]["deleted"] is True
    assert not stored.exists()
    assert api.get("/status").json()["data"]["status"] == "idle"
    assert load(api, DEFAULT_MODEL_ID).json()["data"]["status"] == "loaded"
