"""The cluster under full load: admission at the documented bound, and recovery onto the
replica that replaces a dead one (issue 33 items 1 and 2).

Timings are recorded (tests/cluster/helpers.py record_figure; bench/README.md lists them),
not asserted tightly: the bounds below only say "does not wait behind generations".
"""

from __future__ import annotations

import os
import statistics
import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from tests.cluster.conftest import Cluster
from tests.cluster.helpers import kill, preferred_replica, record_figure, wait_for
from tests.cluster.load import BackgroundStreams

pytest.importorskip("ray.serve", reason="the [cluster] extra is not installed")
pytestmark = pytest.mark.cluster

LONG = {"max_tokens": 800, "ignore_eos": True, "temperature": 0}
# Runs of the recovery scenario (bench/README.md's figures are 3 runs).
RECOVERY_RUNS = int(os.environ.get("BROWSER_LLM_CLUSTER_RECOVERY_RUNS", "1"))


def _timed(call: Callable[[], httpx.Response]) -> tuple[float, httpx.Response]:
    start = time.perf_counter()
    resp = call()
    return time.perf_counter() - start, resp


def _idle(cluster: Cluster) -> None:
    def idle() -> bool:
        engine = cluster.status()["engine"]
        return bool(engine["running"] == 0 and engine["queued"] == 0)

    wait_for(idle, 120, "the cluster to be idle")


def test_past_the_admission_bound_a_fast_503_and_health_never_waits(cluster: Cluster) -> None:
    """Every slot of every replica busy and the ingress queue full: /health, /status,
    /metrics and the model listing still answer at once, the next generation gets the
    spec's 503 OVERLOADED with Retry-After, and the admitted ones are not disturbed."""
    args = cluster.args
    running = args["parallel"] * args["replicas"]
    waiting = args["max_queue"] * args["replicas"]
    bodies = [{**LONG, "prompt": f"Saga {i}:"} for i in range(running + waiting)]
    load = BackgroundStreams(cluster.base_url, bodies).start()
    try:

        def saturated() -> dict[str, Any] | None:
            engine: dict[str, Any] = cluster.status()["engine"]
            # queued: the ingress's admitted requests not started yet (all slots taken).
            full = engine["running"] == running and engine["queued"] == waiting
            return engine if full else None

        wait_for(saturated, 180, "every slot busy and the ingress queue full")
        with httpx.Client(base_url=cluster.base_url, timeout=60) as api:
            health = [_timed(lambda: api.get("/api/v1/health")) for _ in range(10)]
            status = [_timed(lambda: api.get("/api/v1/status")) for _ in range(10)]
            metrics = _timed(lambda: api.get("/metrics"))
            models = _timed(lambda: api.get("/api/v1/models"))
            openai_models = _timed(lambda: api.get("/v1/models"))
            body = {"prompt": "One more?", "max_tokens": 8}
            over = _timed(lambda: api.post("/api/v1/generate", json=body))
            over_stream = _timed(
                lambda: api.post("/api/v1/generate", json={**body, "stream": True})
            )
            still = cluster.status()["engine"]
    finally:
        load.stop()
    figures = {
        "health_median_s": round(statistics.median(t for t, _ in health), 3),
        "health_max_s": round(max(t for t, _ in health), 3),
        "status_median_s": round(statistics.median(t for t, _ in status), 3),
        "status_max_s": round(max(t for t, _ in status), 3),
        "metrics_s": round(metrics[0], 3),
        "models_s": round(models[0], 3),
        "over_bound_503_s": round(over[0], 3),
        "over_bound_stream_503_s": round(over_stream[0], 3),
        "load_average": os.getloadavg()[0],
    }
    record_figure("admission", **figures)
    for _, resp in [*health, *status, metrics, models, openai_models]:
        assert resp.status_code == 200, resp.text
    # Generous bounds: without their own room at the ingress these waited 11-37 s.
    assert figures["health_median_s"] < 5 and figures["status_median_s"] < 5, figures
    for elapsed, resp in (over, over_stream):
        assert resp.status_code == 503, resp.text
        error = resp.json()
        assert error["success"] is False and error["error"]["code"] == "OVERLOADED", error
        assert int(resp.headers["Retry-After"]) >= 1
        assert elapsed < 5, figures
    # The refused requests took nothing from the admitted ones.
    assert still["queued"] == waiting, still
    assert all(s.status in (200, None) for s in load.streams), [s.end for s in load.streams]
    assert not [s.end for s in load.streams if s.end and s.end["type"] == "error"]
    _idle(cluster)


def _running(cluster: Cluster, prompts: list[str]) -> BackgroundStreams:
    load = BackgroundStreams(cluster.base_url, [{**LONG, "prompt": p} for p in prompts]).start()
    wait_for(lambda: all(s.first_token_at for s in load.streams) or None, 120, "streams running")
    return load


def _placed(cluster: Cluster, seen: list[dict[str, int]]) -> dict[str, int]:
    seen.append({r["replica"]: r["streams"] for r in cluster.replicas()})
    return seen[-1]


def _placed_load(cluster: Cluster, run: int, survivor: str, victim: str) -> BackgroundStreams:
    """4 streams running on the survivor and 2 on the victim. The router's prefix affinity
    is a preference: right after the previous test's load (refused and cancelled requests)
    a stream has been seen going to the other replica ({3, 3}); that load is stopped and
    started again with new prompts, at most 3 times."""
    placed = {survivor: 4, victim: 2}
    seen: list[dict[str, int]] = []
    for attempt in range(3):
        tales = [f"Run {run}.{attempt} tale {i}:" for i in range(400)]
        on_survivor = [t for t in tales if preferred_replica(t, [survivor, victim]) == survivor]
        on_victim = [t for t in tales if preferred_replica(t, [survivor, victim]) == victim]
        load = _running(cluster, on_survivor[:4] + on_victim[:2])
        try:
            wait_for(lambda: _placed(cluster, seen) == placed, 30, "streams placed")
            return load
        except AssertionError:
            load.stop()
            _idle(cluster)
    raise AssertionError(f"streams not placed as {placed} in 3 tries: {seen[-1:]}")


def _recovery_run(cluster: Cluster, run: int) -> dict[str, Any]:
    """6 streams on 2 replicas of 4 slots: 4 on the survivor (full), 2 on the victim. The
    victim is killed by pid and a new request is sent at once: it must get its first token
    from the replacement while the survivor's 4 streams all still run (queued behind them
    it would wait for one to end)."""
    replicas = cluster.wait_for_replicas(2)
    ids = [r["replica"] for r in replicas]
    survivor, victim = ids
    load = _placed_load(cluster, run, survivor, victim)
    newcomer: BackgroundStreams | None = None
    victim_report = next(r for r in replicas if r["replica"] == victim)
    try:
        kill(victim_report["pid"])
        killed_at = time.monotonic()
        body = {"prompt": f"Run {run}: after the kill, a short story.", "max_tokens": 16}
        newcomer = BackgroundStreams(cluster.base_url, [{**body, "ignore_eos": True}]).start()
        new = newcomer.streams[0]
        replaced_at = None
        while replaced_at is None or (new.first_token_at is None and new.end is None):
            assert time.monotonic() - killed_at < 180, "no first token within 180 s of the kill"
            if replaced_at is None:
                fresh = [r for r in cluster.replicas() if r["replica"] not in ids]
                if any(r["state"] == "ready" for r in fresh):  # reports come every second
                    replaced_at = time.monotonic()
            time.sleep(0.2)
        assert new.first_token_at is not None, new.end
        survivor_streams = load.streams[:4]
        ended = [s.ended_at - killed_at for s in survivor_streams if s.ended_at is not None]
        first_s = new.first_token_at - killed_at
        figure = {
            "kill_to_first_token_s": round(first_s, 1),
            "kill_to_replacement_ready_s": (
                round(replaced_at - killed_at, 1) if replaced_at is not None else None
            ),
            "survivor_streams_ended_s": [round(e, 1) for e in ended],
            "load_average": os.getloadavg()[0],
        }
        record_figure("recovery", run=run, **figure)
        # No survivor slot had freed: the token came from the replacement replica.
        assert not ended or min(ended) > first_s, figure
    finally:
        load.stop()
        if newcomer is not None:
            newcomer.stop()
        kill(victim_report["engine_pid"])  # normally gone with its replica already
    victim_endings = [s.end["type"] if s.end else None for s in load.streams[4:]]
    assert all(e == "error" for e in victim_endings), victim_endings  # never cut silently
    _idle(cluster)
    return figure


def test_after_a_replica_dies_under_load_new_requests_use_its_replacement(
    cluster: Cluster,
) -> None:
    figures = [_recovery_run(cluster, run) for run in range(RECOVERY_RUNS)]
    cluster.wait_for_replicas(2)
    assert len(figures) == RECOVERY_RUNS
