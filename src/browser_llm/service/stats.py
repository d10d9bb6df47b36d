"""Request counters and recent performance, for /status and model details."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

from browser_llm.core.types import Completion
from browser_llm.observability.events import EventHub
from browser_llm.observability.profile import Profile
from browser_llm.observability.prometheus import PrometheusMetrics

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
    """Counts generation outcomes; keeps a window of recent speeds per model.

    Each outcome is also recorded in the /debug/profile series and the
    Prometheus metrics, so /status, the profile and /metrics agree.
    """

    def __init__(
        self,
        profile: Profile | None = None,
        prometheus: PrometheusMetrics | None = None,
        hub: EventHub | None = None,
    ) -> None:
        self.profile = profile or Profile()
        self.prometheus = prometheus or PrometheusMetrics()
        self.hub = hub or EventHub()
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

    def succeeded(self, model_id: str, completion: Completion, endpoint: str = "generate") -> None:
        self.requests_success += 1
        timings, usage = completion.timings, completion.usage
        latency_ms = timings.time_to_first_token_s * 1000
        speed = tokens_per_second(completion)
        self._recent.append((model_id, speed, latency_ms))
        self._recent_total_s.append(timings.total_s)
        tags = {"model": model_id, "endpoint": endpoint}
        record = self.profile.record
        record("time_to_first_token_ms", latency_ms, **tags)
        record("total_time_ms", timings.total_s * 1000, **tags)
        record("prompt_tokens", usage.prompt_tokens, **tags)
        record("completion_tokens", usage.completion_tokens, **tags)
        if speed > 0:
            record("tokens_per_second", speed, **tags)
        record("cached_prompt_tokens", usage.cached_prompt_tokens, **tags)
        computed = usage.prompt_tokens - usage.cached_prompt_tokens
        if timings.prefill_s > 0:
            record("prefill_tokens_per_second", computed / timings.prefill_s, **tags)
        prom = self.prometheus
        prom.time_to_first_token.observe(timings.time_to_first_token_s)
        if speed > 0:
            prom.tokens_per_second.observe(speed)
        prom.generated_tokens.inc(usage.completion_tokens)
        prom.generations.labels(outcome="success").inc()
        if self.hub.active:
            self.hub.publish(
                "metric",
                {
                    "kind": "request",
                    "tags": tags,
                    "time_to_first_token_ms": round(latency_ms, 2),
                    "tokens_per_second": round(speed, 2),
                    "total_time_ms": round(timings.total_s * 1000, 2),
                    "queue_wait_ms": round(timings.queue_s * 1000, 2),
                    "prompt_tokens": usage.prompt_tokens,
                    "completion_tokens": usage.completion_tokens,
                },
            )

    def queue_wait(self, seconds: float) -> None:
        self._queue_waits.append(seconds)
        self.profile.record("queue_wait_ms", seconds * 1000)

    def rejected(self) -> None:
        self.requests_error += 1  # every started request ends as success or error
        self.requests_rejected += 1
        self.profile.record("errors", 1, code="OVERLOADED")
        self.prometheus.generations.labels(outcome="rejected").inc()

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

    def failed(self, server_fault: bool, code: str = "INTERNAL_ERROR") -> None:
        self.requests_error += 1
        if server_fault:
            self.server_faults += 1
        self.profile.record("errors", 1, code=code)
        self.prometheus.generations.labels(outcome="error").inc()

    def cancelled(self) -> None:
        self.requests_error += 1
        self.requests_cancelled += 1
        self.prometheus.generations.labels(outcome="cancelled").inc()

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
