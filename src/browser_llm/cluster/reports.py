"""Replica reports in Redis: how /status sees every replica, not just the one it asked.

Each replica writes its report (state, model, engine counters, free slots, recent
prefixes) every second under its own key with a short TTL; the ingress reads them all.
A replica that died stops writing and drops out after the TTL. Without Redis (a
`memory://` limit storage) the ingress asks one replica through the handle instead.
"""

from __future__ import annotations

import json
from typing import Any

import redis.asyncio as redis

__all__ = ["REPORT_TTL_S", "ReplicaReports", "redis_url_of"]

REPORT_TTL_S = 5.0


def redis_url_of(storage: str) -> str | None:
    """The Redis URL in BROWSER_LLM_RATE_LIMIT_STORAGE, or None when limits stay in memory."""
    return storage if storage.startswith(("redis://", "rediss://", "unix://")) else None


class ReplicaReports:
    def __init__(self, url: str, namespace: str) -> None:
        self._client = redis.from_url(url)
        self._prefix = f"browser-llm:{namespace}:replica:"

    async def publish(self, replica_id: str, report: dict[str, Any]) -> None:
        await self._client.set(
            self._prefix + replica_id, json.dumps(report), px=int(REPORT_TTL_S * 1000)
        )

    async def remove(self, replica_id: str) -> None:
        await self._client.delete(self._prefix + replica_id)

    async def read_all(self) -> list[dict[str, Any]]:
        keys = [key async for key in self._client.scan_iter(match=self._prefix + "*")]
        if not keys:
            return []
        values = await self._client.mget(keys)
        reports = [json.loads(v) for v in values if v is not None]
        return sorted(reports, key=lambda r: str(r.get("replica")))

    async def close(self) -> None:
        await self._client.aclose()
