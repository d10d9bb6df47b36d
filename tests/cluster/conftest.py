"""The cluster tier: a Redis server and a local Ray cluster with the Serve app, started
once per module by the tests themselves, and every process they started stopped after.

Skipped (with the reason) only when the `[cluster]` extra is not installed; `make test`
installs it and redis-server, so there the tier always runs.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from tests import processes
from tests.conftest import RUNNER_ONLY_ENV

WEDGED_S = 10.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.fail("redis-server is missing: apt-get install redis-server (make cluster-deps)")
    port = free_port()
    proc = processes.spawn(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1) as conn:
                    conn.sendall(b"PING\r\n")
                    if conn.recv(16).startswith(b"+PONG"):
                        break
            except OSError:
                pass
            if time.monotonic() > deadline or proc.poll() is not None:
                pytest.fail("redis-server did not start")
            time.sleep(0.1)
        yield f"redis://127.0.0.1:{port}"
    finally:
        processes.stop(proc, timeout=10)


@dataclass
class Cluster:
    base_url: str
    api: httpx.Client
    args: dict[str, Any]  # the app's build_app args (a test may redeploy with others)

    def status(self) -> dict[str, Any]:
        resp = self.api.get("/api/v1/status")
        assert resp.status_code == 200, resp.text
        data: dict[str, Any] = resp.json()["data"]
        return data

    def replicas(self) -> list[dict[str, Any]]:
        replicas: list[dict[str, Any]] = self.status()["engine"]["cluster"]["replicas"]
        return replicas

    def wait_for_replicas(self, count: int, timeout_s: float = 90) -> list[dict[str, Any]]:
        """Polls /status until `count` replicas report ready with distinct live pids."""
        deadline = time.monotonic() + timeout_s
        while True:
            ready = [r for r in self.replicas() if r["state"] == "ready"]
            if len(ready) == count and all(_alive(r["pid"]) for r in ready):
                return ready
            if time.monotonic() > deadline:
                raise AssertionError(f"replicas did not become {count}: {self.replicas()}")
            time.sleep(0.5)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


@pytest.fixture(scope="module")
def cluster(redis_url: str) -> Iterator[Cluster]:
    import ray
    from ray import serve

    from browser_llm.cluster.app import build_app

    port = free_port()
    before = processes.descendants()
    # Logical CPUs: 2 replicas x 1 thread, the ingress and Serve's own actors take none.
    # Ray's processes (and so the replicas' engines) get the environment of a server's.
    runner_only = {k: os.environ.pop(k) for k in RUNNER_ONLY_ENV if k in os.environ}
    try:
        # "local": a cluster of its own even when a `ray start` on this machine left its
        # address in /tmp/ray/ray_current_cluster (ray.init() would connect to that one).
        ray.init(address="local", num_cpus=4, include_dashboard=False, log_to_driver=False)
    finally:
        os.environ.update(runner_only)
    # Ray's processes share this runner's process group, and a few of them (its dashboard
    # and runtime-env agents) outlive a killed runner by a minute: the watchdog takes them.
    ray_pids = processes.descendants() - before
    processes.adopt(ray_pids)
    try:
        serve.start(http_options={"host": "127.0.0.1", "port": port})
        args = {
            "replicas": 2,
            "threads": 1,
            "context_size": 1024,
            "parallel": 4,
            "max_queue": 8,
            "redis": redis_url,
            "shutdown_grace_s": 30,
            # A wedged engine is found in 10 s, not the default 60 (test_cluster.py).
            "settings": {
                "rate_limit_generate": 10000,
                "rate_limit_status": 10000,
                "engine_wedged_s": WEDGED_S,
            },
        }
        serve.run(build_app(args), name="browser-llm", route_prefix="/")
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=120) as api:
            cluster = Cluster(f"http://127.0.0.1:{port}", api, args)
            cluster.wait_for_replicas(2)
            yield cluster
    finally:
        serve.shutdown()
        ray.shutdown()
        processes.release(ray_pids)
