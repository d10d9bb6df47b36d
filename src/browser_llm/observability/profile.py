"""Time series of real measurements for /debug/profile, bounded per metric."""

from __future__ import annotations

import threading
import time
from collections import deque
from dataclasses import dataclass

import numpy as np

__all__ = ["METRICS", "Aggregation", "Point", "Profile"]

# Every metric the server records, with its unit, for the docs and for validation.
METRICS = {
    "time_to_first_token_ms": "ms from request arrival to the first token",
    "tokens_per_second": "decode speed of one request",
    "total_time_ms": "request wall time",
    "queue_wait_ms": "ms waiting for a sequence slot",
    "prompt_tokens": "prompt tokens after the chat template",
    "completion_tokens": "generated tokens",
    "cached_prompt_tokens": "prompt tokens reused from a slot's earlier request",
    "prefill_tokens_per_second": "prompt tokens computed / prompt processing time",
    "errors": "1 per failed request (tag code)",
    "model_load_ms": "ms to load a model",
    "embedding_ms": "ms to embed one request's texts",
    "download_bytes_per_second": "model download speed",
}


@dataclass(frozen=True)
class Point:
    value: float
    timestamp: float
    tags: dict[str, str]


@dataclass(frozen=True)
class Aggregation:
    """Over `count` points; with none, every figure is None (nothing was measured)."""

    count: int
    avg: float | None = None
    min: float | None = None
    max: float | None = None
    p50: float | None = None
    p95: float | None = None
    p99: float | None = None


class Profile:
    """Keeps the last `capacity` points of each metric."""

    def __init__(self, capacity: int = 1000) -> None:
        self._capacity = capacity
        self._series: dict[str, deque[Point]] = {}
        self._lock = threading.Lock()

    def record(self, name: str, value: float, **tags: str) -> None:
        point = Point(float(value), time.time(), tags)
        with self._lock:
            self._series.setdefault(name, deque(maxlen=self._capacity)).append(point)

    def points(self, name: str, since: float | None = None) -> list[Point]:
        with self._lock:
            series = list(self._series.get(name, ()))
        return [p for p in series if since is None or p.timestamp >= since]

    def names(self) -> list[str]:
        with self._lock:
            return sorted(self._series)

    @staticmethod
    def aggregate(points: list[Point]) -> Aggregation:
        if not points:
            return Aggregation(count=0)
        values = np.array([p.value for p in points], dtype=np.float64)
        p50, p95, p99 = np.percentile(values, [50, 95, 99])
        return Aggregation(
            count=len(points),
            avg=float(values.mean()),
            min=float(values.min()),
            max=float(values.max()),
            p50=float(p50),
            p95=float(p95),
            p99=float(p99),
        )
