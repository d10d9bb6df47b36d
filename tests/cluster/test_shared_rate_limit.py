"""D: rate limits counted in Redis are exact across ingress processes.

Two real server processes (no model: the limiter answers before any route) share one
Redis; 45 generate calls alternate between them under a limit of 10 a minute.
"""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

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
    assert codes.count(429) == 35, codes
    assert len(codes) - codes.count(429) == 10
    for resp in refused:
        assert resp.headers["X-RateLimit-Limit"] == "10"
        assert resp.headers["X-RateLimit-Remaining"] == "0"
        assert int(resp.headers["Retry-After"]) >= 1
        assert resp.json()["error"]["code"] == "RATE_LIMIT"
