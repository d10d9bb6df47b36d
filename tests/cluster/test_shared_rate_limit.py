"""D: rate limits counted in Redis are exact across ingress processes; /metrics and
/debug/profile of any one of them answer for all.

Two real server processes (no model: the limiter answers before any route) share one
Redis; 45 generate calls alternate between them under a limit of 10 a minute.
"""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.cluster.helpers import record_figure, wait_for
from tests.e2e.conftest import served

pytest.importorskip("redis", reason="the [cluster] extra is not installed")
pytestmark = pytest.mark.cluster


def test_generate_limit_is_exact_across_two_processes(redis_url: str, tmp_path: Path) -> None:
    env = {
        "BROWSER_LLM_MODEL": "none",
        "BROWSER_LLM_RATE_LIMIT_STORAGE": redis_url,
        "BROWSER_LLM_RATE_LIMIT_GENERATE": "10",
    }
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    with served(tmp_path / "a", **env) as first, served(tmp_path / "b", **env) as second:
        assert first.base_url != second.base_url
        codes: list[int] = []
        refused: list[httpx.Response] = []
        for i in range(45):
            base = (first, second)[i % 2].base_url
            resp = httpx.post(f"{base}/generate", json={"prompt": "hi"}, timeout=30)
            codes.append(resp.status_code)
            if resp.status_code == 429:
                refused.append(resp)
    record_figure(
        "D", calls=len(codes), passed=len(codes) - codes.count(429), limited=codes.count(429)
    )
    assert codes.count(429) == 35, codes
    assert len(codes) - codes.count(429) == 10
    for resp in refused:
        assert resp.headers["X-RateLimit-Limit"] == "10"
        assert resp.headers["X-RateLimit-Remaining"] == "0"
        assert int(resp.headers["Retry-After"]) >= 1
        assert resp.json()["error"]["code"] == "RATE_LIMIT"


def _merged_counts(base_url: str) -> tuple[float, int]:
    """(generate calls in /metrics, error points in /debug/profile) as one process answers."""
    text = httpx.get(base_url.replace("/api/v1", "/metrics"), timeout=30).text
    calls = sum(
        sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == "browser_llm_http_requests_total"
        and sample.labels.get("endpoint") == "/api/v1/generate"
    )
    profile = httpx.get(f"{base_url}/debug/profile", params={"metric": "errors"}, timeout=30)
    (series,) = profile.json()["data"]["metrics"]
    return calls, int(series["aggregations"]["count"])


def test_metrics_and_profile_answer_for_both_processes(redis_url: str, tmp_path: Path) -> None:
    """Each process publishes its own counters and profile points to Redis; /metrics and
    /debug/profile of either one answer for both (observability/shared.py)."""
    env = {
        "BROWSER_LLM_MODEL": "none",  # every generate fails fast: one error point each
        # A database of its own: no other test's processes publish there.
        "BROWSER_LLM_RATE_LIMIT_STORAGE": f"{redis_url}/5",
    }
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    with served(tmp_path / "a", **env) as first, served(tmp_path / "b", **env) as second:
        for i in range(10):
            base = first.base_url if i < 6 else second.base_url
            resp = httpx.post(f"{base}/generate", json={"prompt": "hi"}, timeout=30)
            assert resp.json()["error"]["code"] == "MODEL_NOT_LOADED", resp.text
        # Snapshots go out every 2 s: wait for both (a bound, not a timing assertion).
        wait_for(
            lambda: (
                _merged_counts(first.base_url) == (10, 10)
                and _merged_counts(second.base_url) == (10, 10)
            ),
            60,
            "both processes to answer for all 10 calls",
        )
        assert _merged_counts(first.base_url) == _merged_counts(second.base_url) == (10, 10)
