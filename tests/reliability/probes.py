"""What a test can read about a server process from outside: /status, /proc, SSE."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx

from tests.e2e.conftest import Server


@dataclass(frozen=True)
class ProcessSample:
    fds: int
    threads: int
    rss_bytes: int


def sample(pid: int) -> ProcessSample:
    """Open file descriptors, OS threads and resident memory of a process (Linux /proc)."""
    fds = len(os.listdir(f"/proc/{pid}/fd"))
    threads = len(os.listdir(f"/proc/{pid}/task"))
    with open(f"/proc/{pid}/statm") as statm:
        rss_pages = int(statm.read().split()[1])
    return ProcessSample(fds, threads, rss_pages * os.sysconf("SC_PAGE_SIZE"))


def wait_idle(server: Server, timeout: float = 60) -> dict[str, Any]:
    """/status once nothing is queued or running and every request has an outcome."""
    deadline = time.monotonic() + timeout
    status: dict[str, Any] = {}
    while time.monotonic() < deadline:
        status = server.status()
        perf, engine = status["performance"], status["engine"]
        settled = perf["requests_total"] == perf["requests_success"] + perf["requests_error"]
        if engine["running"] == 0 and engine["queued"] == 0 and settled:
            return status
        time.sleep(0.05)
    raise AssertionError(f"server did not become idle: {status}")


def sse_events(resp: httpx.Response) -> Iterator[dict[str, Any]]:
    """Events of an SSE response as they arrive."""
    for line in resp.iter_lines():
        if line.startswith("data: "):
            yield json.loads(line[6:])


def greedy(prompt: str, max_tokens: int = 24) -> dict[str, Any]:
    return {"prompt": prompt, "max_tokens": max_tokens, "temperature": 0, "raw": True}
