"""Rate limits, API key, Host and Origin checks, body bounds (fake engine)."""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from browser_llm.api.app import create_app
from browser_llm.config import Settings
from tests import processes
from tests.api.conftest import LOCAL
from tests.fakes import FakeEngine


def make_client(tmp_path: Path, **overrides: Any) -> TestClient:
    settings = Settings(models_dir=tmp_path / "models", **overrides)
    return TestClient(create_app(settings, engine=FakeEngine()), base_url=LOCAL)


@pytest.fixture
def keyed(tmp_path: Path) -> Iterator[TestClient]:
    with make_client(tmp_path, api_key="s3cret-key") as client:
        yield client


def test_headers_count_down_and_429_after_the_limit(tmp_path: Path) -> None:
    with make_client(tmp_path, rate_limit_other=3) as client:
        seen = []
        for _ in range(3):
            resp = client.get("/api/v1/models")
            assert resp.status_code == 200
            seen.append(int(resp.headers["X-RateLimit-Remaining"]))
            assert resp.headers["X-RateLimit-Limit"] == "3"
            assert int(resp.headers["X-RateLimit-Reset"]) >= int(time.time())
        assert seen == [2, 1, 0]
        over = client.get("/api/v1/models")
        assert over.status_code == 429
        assert over.json()["error"]["code"] == "RATE_LIMIT"
        assert 1 <= int(over.headers["Retry-After"]) <= 60
        assert over.headers["X-RateLimit-Remaining"] == "0"


def test_61st_generate_in_a_minute_is_429_and_buckets_are_independent(client: TestClient) -> None:
    for i in range(60):
        resp = client.post("/api/v1/generate", json={"prompt": "hi", "max_tokens": 1})
        assert resp.status_code == 200, i
    resp = client.post("/api/v1/generate", json={"prompt": "hi", "max_tokens": 1})
    assert resp.status_code == 429
    assert resp.json()["error"]["code"] == "RATE_LIMIT"
    assert "Retry-After" in resp.headers
    status = client.get("/api/v1/status")
    assert status.status_code == 200 and status.headers["X-RateLimit-Limit"] == "120"
    models = client.get("/api/v1/models")
    assert models.status_code == 200 and models.headers["X-RateLimit-Limit"] == "300"


def test_key_is_required_when_set(keyed: TestClient) -> None:
    resp = keyed.get("/api/v1/status")
    assert resp.status_code == 401 and resp.json()["error"]["code"] == "UNAUTHORIZED"
    assert keyed.get("/api/v1/status", headers={"Authorization": "Bearer wrong"}).status_code == 401
    good = keyed.get("/api/v1/status", headers={"Authorization": "Bearer s3cret-key"})
    assert good.status_code == 200
    assert keyed.get("/api/v1/models", headers={"X-API-Key": "s3cret-key"}).status_code == 200
    assert keyed.get("/api/v1/debug/logs").status_code == 401
    assert keyed.get("/metrics").status_code == 401
    assert keyed.get("/api/v1/health").status_code == 200  # the one open endpoint


def test_foreign_host_is_403(client: TestClient) -> None:
    resp = client.get("/api/v1/status", headers={"Host": "evil.example.com"})
    assert resp.status_code == 403 and resp.json()["error"]["code"] == "FORBIDDEN"
    for host in ("localhost:3000", "127.0.0.1", "[::1]:3000"):
        assert client.get("/api/v1/status", headers={"Host": host}).status_code == 200


def test_allowed_host_is_served(tmp_path: Path) -> None:
    with make_client(tmp_path, allowed_hosts=["llm.lan"]) as client:
        assert client.get("/api/v1/health", headers={"Host": "llm.lan"}).status_code == 200


def test_foreign_origin_preflight_gets_no_allow_header(client: TestClient, tmp_path: Path) -> None:
    preflight = {"Origin": "https://evil.example.com", "Access-Control-Request-Method": "POST"}
    resp = client.options("/api/v1/generate", headers=preflight)
    assert "access-control-allow-origin" not in resp.headers
    with make_client(tmp_path, cors_origins=["https://app.example.com"]) as allowed:
        ok = allowed.options(
            "/api/v1/generate",
            headers={**preflight, "Origin": "https://app.example.com"},
        )
        assert ok.headers["access-control-allow-origin"] == "https://app.example.com"
        evil = allowed.options("/api/v1/generate", headers=preflight)
        assert "access-control-allow-origin" not in evil.headers


def test_foreign_origin_websocket_is_refused(client: TestClient) -> None:
    from starlette.websockets import WebSocketDisconnect

    url = "ws://127.0.0.1:3000/api/v1/ws"
    evil = {"Origin": "https://evil.example.com"}
    with pytest.raises(WebSocketDisconnect) as refused, client.websocket_connect(url, headers=evil):
        pass
    assert "cross-origin" in refused.value.reason
    with client.websocket_connect(url, headers={"Origin": "http://localhost:3000"}) as ws:
        ws.send_text("not json")
        assert ws.receive_json()["data"]["code"] == "VALIDATION_ERROR"


def test_oversized_body_is_413(client: TestClient) -> None:
    big = b'{"prompt": "' + b"a" * 1_100_000 + b'"}'
    resp = client.post(
        "/api/v1/generate", content=big, headers={"Content-Type": "application/json"}
    )
    assert resp.status_code == 413
    assert resp.json()["error"]["code"] == "PAYLOAD_TOO_LARGE"

    def chunks() -> Iterator[bytes]:  # no Content-Length: counted as it arrives
        yield b'{"prompt": "'
        for _ in range(20):
            yield b"a" * 100_000
        yield b'"}'

    chunked = client.post(
        "/api/v1/generate", content=chunks(), headers={"Content-Type": "application/json"}
    )
    assert chunked.status_code == 413


def test_non_loopback_bind_without_key_refuses_to_start() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("BROWSER_LLM_")}
    env["BROWSER_LLM_MODEL"] = "none"
    proc = processes.run(
        [sys.executable, "-m", "browser_llm.cli", "serve", "--host", "0.0.0.0"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2
    assert "refusing to listen on 0.0.0.0" in proc.stderr
    assert "BROWSER_LLM_API_KEY" in proc.stderr
