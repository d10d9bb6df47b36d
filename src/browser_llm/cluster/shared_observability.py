"""Each server process's own measurements in Redis, so /debug/profile and /metrics of any
process answer for all of them (the merge: observability/shared.py).

Used whenever the rate-limit storage is Redis: the cluster's ingress replicas, or plain
`browser-llm serve` processes behind one load balancer. Every `_PUBLISH_EVERY_S` a process
writes its snapshot under its own key with a `SNAPSHOT_TTL_S` TTL; a process that stopped
drops out after the TTL (its counts leave the sums: Prometheus reads that as a counter
reset, as it would for a restarted server).
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import socket
import uuid
from collections.abc import Callable
from typing import Any

import redis.asyncio as redis

__all__ = ["SNAPSHOT_TTL_S", "RedisPeers"]

logger = logging.getLogger(__name__)

SNAPSHOT_TTL_S = 10.0
_PUBLISH_EVERY_S = 2.0
_PREFIX = "browser-llm:observability:"


class RedisPeers:
    """Publishes `take()` every 2 s; reads the other processes' snapshots."""

    def __init__(self, url: str, take: Callable[[], dict[str, Any]]) -> None:
        self._client = redis.from_url(url)
        self._take = take
        # Host and pid say who it is; the random part keeps a restarted pid apart.
        self._key = f"{_PREFIX}{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._publish_forever())

    async def read(self) -> list[dict[str, Any]]:
        keys = [k async for k in self._client.scan_iter(match=_PREFIX + "*", count=1000)]
        keys = [k for k in keys if k.decode() != self._key]
        if not keys:
            return []
        return [json.loads(v) for v in await self._client.mget(keys) if v is not None]

    async def publish(self) -> None:
        await self._client.set(self._key, json.dumps(self._take()), px=int(SNAPSHOT_TTL_S * 1000))

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
        try:
            await self._client.delete(self._key)  # gone at once, not after the TTL
        except Exception as exc:
            logger.warning("could not remove this process's metrics snapshot: %s", exc)
        await self._client.aclose()

    async def _publish_forever(self) -> None:
        while True:
            try:
                await self.publish()
            except Exception as exc:  # Redis away: the sums go stale, serving goes on
                logger.warning("could not publish this process's metrics snapshot: %s", exc)
            await asyncio.sleep(_PUBLISH_EVERY_S)
