"""Request counters and recent performance, for /status and model details."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

from browser_llm.core.types import Completion

__all__ = ["PerformanceSummary", "RequestStats"]

_WINDOW = 1000  # recent requests kept for averages


@dataclass(frozen=True)
class PerformanceSummary:
    avg_tokens_per_second: float
    avg_latency_ms: float


def tokens_per_second(completion: Completion) -> float:
    """Decode speed: tokens after the first over the time between first and last.

    The first token comes out of prompt processing, so it belongs to latency,
    not to decode speed. A one-token answer has no decode phase: 0.
    """
    decoded = completion.usage.completion_tokens - 1
    seconds = completion.timings.decode_s
    return decoded / seconds if decoded > 0 and seconds > 0 else 0.0


class RequestStats:
    """Counts generation outcomes; keeps a window of recent speeds per model."""

    def __init__(self) -> None:
        self.requests_total = 0
        self.requests_success = 0
        self.requests_error = 0
        self.requests_cancelled = 0
        self.server_faults = 0
        self.requests_rejected = 0  # turned away with OVERLOADED
        self._recent: deque[tuple[str, float, float]] = deque(maxlen=_WINDOW)
        self._recent_total_s: deque[float] = deque(maxlen=50)
        self._queue_waits: deque[float] = deque(maxlen=_WINDOW)

    def started(self) -> None:
        self.requests_total += 1

    def succeeded(self, model_id: str, completion: Completion) -> None:
        self.requests_success += 1
        latency_ms = completion.timings.time_to_first_token_s * 1000
        self._recent.append((model_id, tokens_per_second(completion), latency_ms))
        self._recent_total_s.append(completion.timings.total_s)

    def queue_wait(self, seconds: float) -> None:
        self._queue_waits.append(seconds)

    def rejected(self) -> None:
        self.requests_rejected += 1

    def recent_total_s(self) -> float:
        """Mean wall time of recent successful requests (0 before any)."""
        rows = self._recent_total_s
        return sum(rows) / len(rows) if rows else 0.0

    def queue_wait_ms(self) -> tuple[float, float]:
        """(mean, max) queue wait over recent requests, in ms."""
        waits = self._queue_waits
        if not waits:
            return 0.0, 0.0
        return round(sum(waits) / len(waits) * 1000, 2), round(max(waits) * 1000, 2)

    def failed(self, server_fault: bool) -> None:
        self.requests_error += 1
        if server_fault:
            self.server_faults += 1

    def cancelled(self) -> None:
        self.requests_cancelled += 1

    def summary(self, model_id: str | None = None) -> PerformanceSummary:
        rows = [r for r in self._recent if model_id is None or r[0] == model_id]
        if not rows:
            return PerformanceSummary(0.0, 0.0)
        speeds = [r[1] for r in rows if r[1] > 0]
        return PerformanceSummary(
            avg_tokens_per_second=round(sum(speeds) / len(speeds), 2) if speeds else 0.0,
            avg_latency_ms=round(sum(r[2] for r in rows) / len(rows), 2),
        )

    @property
    def stability_score(self) -> float:
        """Share of finished generations that did not fail through a server fault."""
        finished = self.requests_success + self.server_faults
        return 1.0 if finished == 0 else round(self.requests_success / finished, 4)
