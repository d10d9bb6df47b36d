"""Per-client rate limits (the spec's: generate 60/min, status 120/min, others 300/min).

Counting is the `limits` library's moving window, in memory by default; with
BROWSER_LLM_RATE_LIMIT_STORAGE=redis://host:6379 several server processes share it.
"""

from __future__ import annotations

import hashlib
import math
import time
from dataclasses import dataclass

from limits import RateLimitItem, RateLimitItemPerMinute
from limits.storage import storage_from_string
from limits.strategies import MovingWindowRateLimiter

from browser_llm.config import Settings

__all__ = ["RateDecision", "RateLimiter", "bucket_for"]


@dataclass(frozen=True)
class RateDecision:
    allowed: bool
    limit: int
    remaining: int
    reset: int  # unix seconds when a slot frees up

    def headers(self) -> dict[str, str]:
        headers = {
            "X-RateLimit-Limit": str(self.limit),
            "X-RateLimit-Remaining": str(self.remaining),
            "X-RateLimit-Reset": str(self.reset),
        }
        if not self.allowed:
            headers["Retry-After"] = str(max(1, math.ceil(self.reset - time.time())))
        return headers


# Ollama's inference routes (its /api/generate is matched by the suffix rule), and
# Anthropic's Messages route, and OpenAI's Responses API (POST creates; its GETs and DELETEs
# of stored responses are "other").
_GENERATE_PATHS = {"/api/chat", "/api/embed", "/api/embeddings", "/v1/messages", "/v1/responses"}


def bucket_for(method: str, path: str) -> str:
    if path.endswith("/generate") or path.endswith("/completions") or path in _GENERATE_PATHS:
        return "generate" if method == "POST" else "other"
    if path.endswith("/status"):
        return "status"
    return "other"


def client_key(api_key: str | None, address: str | None) -> str:
    """The API key when one is sent (hashed: keys never sit in memory tables), else the address."""
    if api_key:
        return "key:" + hashlib.sha256(api_key.encode()).hexdigest()[:32]
    return "ip:" + (address or "unknown")


class RateLimiter:
    def __init__(self, settings: Settings) -> None:
        self._limiter = MovingWindowRateLimiter(storage_from_string(settings.rate_limit_storage))
        self._items: dict[str, RateLimitItem] = {
            "generate": RateLimitItemPerMinute(settings.rate_limit_generate),
            "status": RateLimitItemPerMinute(settings.rate_limit_status),
            "other": RateLimitItemPerMinute(settings.rate_limit_other),
        }

    def hit(self, bucket: str, client: str) -> RateDecision:
        item = self._items[bucket]
        allowed = self._limiter.hit(item, bucket, client)
        stats = self._limiter.get_window_stats(item, bucket, client)
        return RateDecision(allowed, item.amount, max(0, stats.remaining), int(stats.reset_time))
