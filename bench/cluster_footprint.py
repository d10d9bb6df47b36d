"""Start-up time and memory of the one-machine cluster (2 replicas, default model).

    .venv/bin/python bench/cluster_footprint.py

Starts a local Redis and Ray cluster like tests/cluster does, deploys the app, and
prints how long each phase took and the resident memory of every process it started
(the Ray head's processes, the Serve actors, the engine processes). Stops them all.
Run it alone: the figures mean nothing on a busy machine. No throughput is measured:
2 replicas on 2 cores say nothing about it.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time

import httpx
import psutil


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _rss_of_descendants() -> tuple[int, int]:
    me = psutil.Process()
    total, count = 0, 0
    for proc in me.children(recursive=True):
        try:
            total += proc.memory_info().rss
            count += 1
        except psutil.NoSuchProcess:
            pass
    return total, count


def main() -> None:
    import ray
    from ray import serve

    from browser_llm.cluster.app import build_app

    redis_port = _free_port()
    binary = shutil.which("redis-server") or "redis-server"
    redis = subprocess.Popen(
        [binary, "--port", str(redis_port), "--bind", "127.0.0.1", "--save", ""],
        stdout=subprocess.DEVNULL,
    )
    port = _free_port()
    try:
        t0 = time.perf_counter()
        # "local": a cluster of its own even when a `ray start` on this machine left its
        # address in /tmp/ray/ray_current_cluster (ray.init() would connect to that one).
        ray.init(address="local", num_cpus=4, include_dashboard=False, log_to_driver=False)
        serve.start(http_options={"host": "127.0.0.1", "port": port})
        t1 = time.perf_counter()
        rss_empty, n_empty = _rss_of_descendants()
        args = {"replicas": 2, "threads": 1, "redis": f"redis://127.0.0.1:{redis_port}"}
        serve.run(build_app(args), name="browser-llm", route_prefix="/")
        resp = httpx.post(
            f"http://127.0.0.1:{port}/api/v1/generate",
            json={"prompt": "Hi", "max_tokens": 4},
            timeout=120,
        )
        t2 = time.perf_counter()
        assert resp.status_code == 200, resp.text
        rss_app, n_app = _rss_of_descendants()
        print(f"ray.init + serve.start:           {t1 - t0:6.1f} s")
        print(f"app deployed, first answer:       {t2 - t1:6.1f} s")
        print(f"memory, Ray + Serve, no app:      {rss_empty / 2**30:6.2f} GiB ({n_empty} proc)")
        print(f"memory, 2 replicas, model loaded: {rss_app / 2**30:6.2f} GiB ({n_app} proc)")
    finally:
        serve.shutdown()
        ray.shutdown()
        redis.terminate()
        redis.wait()


if __name__ == "__main__":
    main()
