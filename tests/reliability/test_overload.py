"""Three times the admission limit at once: the excess gets a fast 503 with Retry-After,
everything admitted completes correctly, nothing hangs."""

from __future__ import annotations

import threading
import time
from typing import Any

import httpx

from tests.e2e.conftest import Server
from tests.reliability.probes import greedy, sse_events, wait_idle


def test_three_times_the_admission_limit(rel_server: Server, rel_api: httpx.Client) -> None:
    server = rel_server
    start = wait_idle(server)
    limit = start["engine"]["parallel"] + start["engine"]["max_queue"]
    body = {**greedy("List the planets of the solar system", 48), "ignore_eos": True}
    reference = rel_api.post("/generate", json=body).json()["data"]["text"]
    wait_idle(server)

    results: list[dict[str, Any]] = []
    lock = threading.Lock()
    go = threading.Barrier(3 * limit)

    def one(i: int) -> None:
        stream = i % 2 == 1
        with httpx.Client(base_url=server.base_url, timeout=300) as client:
            go.wait()
            with client.stream("POST", "/generate", json={**body, "stream": stream}) as resp:
                answered = time.monotonic()
                if resp.status_code == 200 and stream:
                    events = list(sse_events(resp))
                    text = "".join(e["data"]["token"] for e in events if e["type"] == "token")
                    last = events[-1]["type"]
                else:
                    resp.read()
                    data = resp.json()
                    text = data["data"]["text"] if resp.status_code == 200 else ""
                    last = "done" if resp.status_code == 200 else data["error"]["code"]
            with lock:
                results.append(
                    {
                        "status": resp.status_code,
                        "retry_after": resp.headers.get("Retry-After"),
                        "text": text,
                        "last": last,
                        "answered": answered,
                        "ended": time.monotonic(),
                    }
                )

    threads = [threading.Thread(target=one, args=(i,)) for i in range(3 * limit)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=300)
    assert not any(t.is_alive() for t in threads), "a request hung"

    admitted = [r for r in results if r["status"] == 200]
    refused = [r for r in results if r["status"] != 200]
    assert len(results) == 3 * limit
    assert len(admitted) >= limit and refused, [r["status"] for r in results]
    for r in refused:
        assert r["status"] == 503 and r["last"] == "OVERLOADED", r
        assert r["retry_after"] is not None and int(r["retry_after"]) >= 1
    for r in admitted:
        assert r["last"] == "done" and r["text"] == reference  # batching changes no output
    # Fast: every refusal came back before any admitted request had finished.
    assert max(r["answered"] for r in refused) < min(r["ended"] for r in admitted)

    end = wait_idle(server)
    assert end["engine"]["requests_rejected"] - start["engine"]["requests_rejected"] == len(refused)
    assert rel_api.post("/generate", json=greedy("Hello", 4)).status_code == 200
