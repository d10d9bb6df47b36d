"""Merging several processes' measurements (observability/shared.py), without Redis."""

from __future__ import annotations

import json

from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from browser_llm.observability.profile import Profile
from browser_llm.observability.prometheus import PrometheusMetrics
from browser_llm.observability.shared import (
    merged_exposition,
    merged_names,
    merged_points,
    snapshot,
)


def _process(requests: int, ttft_s: float, restarts: int) -> tuple[Profile, PrometheusMetrics]:
    profile, metrics = Profile(), PrometheusMetrics()
    for _ in range(requests):
        metrics.requests.labels("POST", "/api/v1/generate", "200").inc()
        metrics.time_to_first_token.observe(ttft_s)
        profile.record("total_time_ms", ttft_s * 1000, model="m")
    metrics.render(queued=1, running=0, model_id="m", state="ready", engine={"restarts": restarts})
    return profile, metrics


def _samples(text: bytes) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text.decode())
        for s in family.samples
    }


def test_counters_and_buckets_add_up_engine_readings_do_not() -> None:
    _, here = _process(3, 0.04, restarts=2)
    peer_profile, peer = _process(2, 3.0, restarts=2)
    # What the peer publishes goes through JSON, as in Redis.
    peers = [json.loads(json.dumps(snapshot(peer_profile, peer.registry)))]
    merged = _samples(merged_exposition(here.registry, peers))
    labels = (("code", "200"), ("endpoint", "/api/v1/generate"), ("method", "POST"))
    assert merged[("browser_llm_http_requests_total", labels)] == 5
    ttft = "browser_llm_time_to_first_token_seconds"
    assert merged[(f"{ttft}_count", ())] == 5
    assert merged[(f"{ttft}_bucket", (("le", "0.05"),))] == 3  # only this process's
    assert merged[(f"{ttft}_bucket", (("le", "5.0"),))] == 5
    assert merged[("browser_llm_queue_depth", ())] == 2  # one waiting in each
    # Engine readings are the answering process's own (in a cluster: every replica's).
    assert merged[("browser_llm_engine_restarts_total", ())] == 2


def test_profile_aggregates_the_union_of_points() -> None:
    here_profile, _ = _process(3, 0.04, restarts=0)
    peer_profile, peer = _process(2, 3.0, restarts=0)
    peer_profile.record("model_load_ms", 900.0)
    peers = [json.loads(json.dumps(snapshot(peer_profile, peer.registry)))]
    assert merged_names(here_profile, peers) == ["model_load_ms", "total_time_ms"]
    points = merged_points(here_profile, peers, "total_time_ms", None)
    assert len(points) == 5 and points == sorted(points, key=lambda p: p.timestamp)
    assert Profile.aggregate(points).max == 3000.0
    assert merged_points(here_profile, peers, "total_time_ms", since=2e9) == []


def test_without_peers_the_exposition_is_the_process_own() -> None:
    _, here = _process(1, 0.1, restarts=0)
    merged = _samples(merged_exposition(here.registry, []))
    assert merged == _samples(generate_latest(here.registry))
