"""A bounded soak (bench/soak.py runs 1,000): every kind of request mixed, several at
once. No unexpected answer, nothing left running, and every request that reached
generation is counted exactly once as a success or an error."""

from __future__ import annotations

import httpx

from tests.e2e.conftest import Server
from tests.reliability.mixed_load import KINDS, run_mixed_load
from tests.reliability.probes import greedy, sample, wait_idle

REQUESTS = 150


def test_bounded_soak(rel_server: Server, rel_api: httpx.Client) -> None:
    start = wait_idle(rel_server)
    before = sample(rel_server.process.pid)
    result = run_mixed_load(rel_server.base_url, REQUESTS, concurrency=3)
    assert not result.unexpected, result.unexpected[:10]
    assert sum(result.outcomes.values()) == REQUESTS
    assert {key.split(":")[0] for key in result.outcomes} == set(KINDS)

    end = wait_idle(rel_server)
    perf = end["performance"]
    assert perf["requests_total"] == perf["requests_success"] + perf["requests_error"]
    # The pydantic-invalid bodies never reach generation; everything else does (a client
    # that timed out may, rarely, have left before its request was dispatched).
    reached = perf["requests_total"] - start["performance"]["requests_total"]
    invalid = result.outcomes["invalid_body:400"]
    left = result.outcomes["cancel_json:left"]
    assert REQUESTS - invalid - left <= reached <= REQUESTS - invalid
    after = sample(rel_server.process.pid)
    assert after.threads <= before.threads + 2, (before, after)
    assert after.fds <= before.fds + 4, (before, after)
    assert rel_api.post("/generate", json=greedy("Hello", 4)).status_code == 200
