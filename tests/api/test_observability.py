"""Debug logs, performance profile, Prometheus metrics and request ids (fake engine)."""

from __future__ import annotations

import logging
import time

import numpy as np
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from browser_llm.observability.logs import LogBuffer
from browser_llm.observability.profile import Profile


def test_generate_leaves_a_log_record_with_its_request_id(client: TestClient) -> None:
    resp = client.post("/api/v1/generate", json={"prompt": "secret prompt text"})
    rid = resp.json()["metadata"]["requestId"]
    logs = client.get("/api/v1/debug/logs", params={"level": "info"}).json()["data"]["logs"]
    finished = [r for r in logs if r["message"].startswith("generation finished")]
    assert finished and finished[-1]["service"] == "service"
    assert finished[-1]["data"]["requestId"] == rid
    assert all("secret prompt text" not in str(r) for r in logs), "prompts are never logged"


def test_log_filters_and_limits(client: TestClient) -> None:
    for _ in range(3):
        client.post("/api/v1/generate", json={"prompt": "hi"})
    all_logs = client.get("/api/v1/debug/logs").json()["data"]["logs"]
    assert len(all_logs) >= 3
    assert len(client.get("/api/v1/debug/logs?limit=2").json()["data"]["logs"]) == 2
    errors = client.get("/api/v1/debug/logs?level=error").json()["data"]["logs"]
    assert all(r["level"] == "error" for r in errors)
    future = time.time() + 60
    assert client.get(f"/api/v1/debug/logs?since={future}").json()["data"]["logs"] == []
    # A JavaScript client sends Date.now(): milliseconds.
    ms_future, ms_past = int(future * 1000), int((time.time() - 600) * 1000)
    assert client.get(f"/api/v1/debug/logs?since={ms_future}").json()["data"]["logs"] == []
    assert len(client.get(f"/api/v1/debug/logs?since={ms_past}").json()["data"]["logs"]) >= 3
    for bad in ("level=loud", "limit=0", "limit=5000", "since=-1", "limit=x"):
        resp = client.get(f"/api/v1/debug/logs?{bad}")
        assert resp.status_code == 400, bad
        assert resp.json()["error"]["code"] == "VALIDATION_ERROR"


def test_ring_buffer_stays_bounded() -> None:
    buffer = LogBuffer(capacity=500)
    logger = logging.getLogger("browser_llm.test_ring")
    logger.addHandler(buffer)
    logger.setLevel(logging.INFO)
    try:
        for i in range(10_000):
            logger.info("record %d", i)
    finally:
        logger.removeHandler(buffer)
    assert len(buffer) == 500
    newest = buffer.query("debug", None, 1)[0]
    assert newest.message == "record 9999" and newest.service == "test_ring"


def test_profile_aggregations_equal_numpy_percentiles() -> None:
    profile = Profile(capacity=10_000)
    rng = np.random.default_rng(7)
    values = rng.exponential(50, size=777)
    for v in values:
        profile.record("time_to_first_token_ms", float(v), model="m")
    agg = profile.aggregate(profile.points("time_to_first_token_ms"))
    assert np.isclose(agg.p50, np.percentile(values, 50))
    assert np.isclose(agg.p95, np.percentile(values, 95))
    assert np.isclose(agg.p99, np.percentile(values, 99))
    assert np.isclose(agg.avg, values.mean())
    assert (agg.min, agg.max) == (values.min(), values.max())
    bounded = Profile(capacity=100)
    for i in range(10_000):
        bounded.record("x", i)
    assert len(bounded.points("x")) == 100


def test_profile_endpoint(client: TestClient) -> None:
    client.post("/api/v1/generate", json={"prompt": "hi"})
    data = client.get("/api/v1/debug/profile").json()["data"]
    names = {m["name"] for m in data["metrics"]}
    assert {"time_to_first_token_ms", "completion_tokens", "model_load_ms"} <= names
    one = client.get("/api/v1/debug/profile?metric=completion_tokens").json()["data"]["metrics"]
    assert len(one) == 1 and one[0]["values"][0]["tags"]["model"]
    assert one[0]["aggregations"]["max"] == 5 and one[0]["aggregations"]["count"] == 1
    assert client.get("/api/v1/debug/profile?metric=nope").status_code == 400
    # No points in range: no figures that look measured, only the count.
    later = int((time.time() + 60) * 1000)
    empty = client.get(f"/api/v1/debug/profile?metric=completion_tokens&since={later}")
    assert empty.json()["data"]["metrics"] == [
        {"name": "completion_tokens", "values": [], "aggregations": {"count": 0}}
    ]


def test_metrics_parse_with_prometheus_parser(client: TestClient) -> None:
    client.post("/api/v1/generate", json={"prompt": "hi"})
    client.get("/api/v1/models/nope")
    text = client.get("/metrics").text
    families = {f.name: f for f in text_string_to_metric_families(text)}
    requests = families["browser_llm_http_requests"]
    labels = {(s.labels["endpoint"], s.labels["code"]) for s in requests.samples}
    assert ("/api/v1/generate", "200") in labels
    assert ("/api/v1/models/{model_id}", "404") in labels
    assert "browser_llm_time_to_first_token_seconds" in families
    assert "browser_llm_queue_depth" in families
    loaded = families["browser_llm_model_loaded"].samples
    assert loaded and loaded[0].value == 1


def test_client_request_id_is_kept(client: TestClient) -> None:
    resp = client.get("/api/v1/status", headers={"X-Request-ID": "my-trace-42"})
    assert resp.headers["X-Request-ID"] == "my-trace-42"
    assert resp.json()["metadata"]["requestId"] == "my-trace-42"
    odd = client.get("/api/v1/status", headers={"X-Request-ID": "bad id\twith spaces"})
    assert odd.headers["X-Request-ID"].startswith("req_")
