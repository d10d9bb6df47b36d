"""Models and status endpoints against the fake engine."""

from __future__ import annotations

import time

from fastapi.testclient import TestClient

from browser_llm.config import DEFAULT_MODEL_ID
from browser_llm.core.types import GpuDevice
from tests.fakes import FakeEngine


def test_models_list_has_default_model(client: TestClient) -> None:
    resp = client.get("/api/v1/models")
    assert resp.status_code == 200
    models = {m["id"]: m for m in resp.json()["data"]["models"]}
    default = models[DEFAULT_MODEL_ID]
    assert default["downloaded"] is True
    assert default["loaded"] is True
    assert set(default) >= {
        "id",
        "name",
        "size",
        "vram_required",
        "downloaded",
        "speed_tier",
        "quality_tier",
        "capabilities",
    }


def test_model_details(client: TestClient) -> None:
    data = client.get(f"/api/v1/models/{DEFAULT_MODEL_ID}").json()["data"]
    assert data["parameters"] == {"total": "135M", "quantization": "Q4_1"}
    assert set(data["performance"]) == {"avg_tokens_per_second", "avg_latency_ms"}
    assert data["description"]


def test_unknown_model_is_404(client: TestClient) -> None:
    for method, path in (("GET", "/api/v1/models/nope"), ("POST", "/api/v1/models/nope/load")):
        resp = client.request(method, path)
        assert resp.status_code == 404
        assert resp.json()["error"]["code"] == "NOT_FOUND"


def test_load_model(idle_client: TestClient) -> None:
    assert idle_client.get("/api/v1/status").json()["data"]["status"] == "idle"
    resp = idle_client.post(f"/api/v1/models/{DEFAULT_MODEL_ID}/load")
    assert resp.status_code == 200
    assert resp.json()["data"]["status"] == "loading"
    for _ in range(600):
        data = idle_client.post(f"/api/v1/models/{DEFAULT_MODEL_ID}/load").json()["data"]
        if data["status"] != "loading":
            break
        time.sleep(0.05)
    assert data["status"] == "loaded" and data["progress"] == 1.0
    status = idle_client.get("/api/v1/status").json()["data"]
    assert status["status"] == "ready"
    assert status["model"] == {"id": DEFAULT_MODEL_ID, "loaded": True}


def test_status_fields_are_real_readings(client: TestClient, fake_engine: FakeEngine) -> None:
    client.post("/api/v1/generate", json={"prompt": "hi"})
    client.post("/api/v1/generate", json={"prompt": "x", "max_tokens": 0})
    data = client.get("/api/v1/status").json()["data"]
    assert data["system"]["ram_gb"] > 0.5
    assert data["system"]["storage_used_gb"] > 0.05  # the packaged default model
    assert data["system"]["storage_quota_gb"] >= data["system"]["storage_used_gb"]
    perf = data["performance"]
    assert perf["requests_total"] == 1  # the invalid request never reached generation
    assert perf["requests_success"] == 1
    assert perf["avg_latency_ms"] > 0
    assert data["health"]["stability_score"] == 1.0


def test_gpu_readings_come_from_the_engines_devices(
    client: TestClient, fake_engine: FakeEngine
) -> None:
    system = client.get("/api/v1/status").json()["data"]["system"]
    # The native engine never runs on WebGPU, and a machine without GPUs has no VRAM.
    assert system["webgpu_available"] is False
    assert system["gpu_vram_gb"] == 0.0
    assert system["gpu_offload"] == {"supported": False, "devices": []}
    gib = 1024**3
    fake_engine.gpus = (
        GpuDevice("CUDA0", "A GPU", "gpu", 8 * gib, 6 * gib),
        GpuDevice("Vulkan1", "An integrated one", "igpu", 2 * gib, 2 * gib),
    )
    system = client.get("/api/v1/status").json()["data"]["system"]
    assert system["gpu_vram_gb"] == 8.0  # dedicated memory only: an iGPU's is the host's
    assert [d["name"] for d in system["gpu_offload"]["devices"]] == ["CUDA0", "Vulkan1"]
    assert system["gpu_offload"]["devices"][0]["memory_free_gb"] == 6.0
    assert system["webgpu_available"] is False


def test_openapi_describes_every_endpoint(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    paths = spec["paths"]
    for path in (
        "/api/v1/generate",
        "/api/v1/models",
        "/api/v1/models/{model_id}",
        "/api/v1/models/{model_id}/load",
        "/api/v1/status",
    ):
        assert path in paths
    schemas = spec["components"]["schemas"]
    assert "GenerateRequestBody" in schemas
    assert "max_tokens" in schemas["GenerateRequestBody"]["properties"]
