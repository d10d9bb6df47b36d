"""The Serve deployment whose replicas run our engine: one model per replica, in the
engine-process engine (engine/process/engine.py), so a llama.cpp fault ends the engine
process, not the replica.

generate() streams the engine's events in engine/process/wire.py's encoded form (plain lists, the
same JSON shapes the engine process sends), preceded by one ["R", replica id] item so the
ingress knows which replica serves the request.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import os
import time
from collections import OrderedDict
from collections.abc import AsyncIterator, Awaitable
from typing import Any

from ray import serve

from browser_llm.api.services import default_engine
from browser_llm.cluster.prefix_choice import prefix_digest, prefix_key
from browser_llm.cluster.reports import ReplicaReports, redis_url_of
from browser_llm.config import Settings
from browser_llm.core.errors import BrowserLLMError
from browser_llm.core.types import EmbedInput
from browser_llm.engine.process.engine import ProcessEngine
from browser_llm.engine.process.wire import decode_request, encode_error, encode_event, encode_model
from browser_llm.models.catalog import Catalog
from browser_llm.models.storage import ModelStore
from browser_llm.service.registry import ModelRegistry

__all__ = ["EngineReplica"]

logger = logging.getLogger(__name__)

_PREFIXES_KEPT = 32  # recent prefix keys reported (a slot's KV holds its last prompt)
_REPORT_EVERY_S = 1.0


class EngineReplica:
    """Serve wraps it with serve.deployment in app.py; Serve calls check_health."""

    # Serve awaits an async constructor (replica.py: initialize_callable).
    async def __init__(self, settings: dict[str, Any]) -> None:  # type: ignore[misc]
        self._settings = Settings(**{**settings, "engine_process": True})
        engine = default_engine(self._settings)
        assert isinstance(engine, ProcessEngine)
        self._engine = engine
        self._engine.start()
        context = serve.get_replica_context()
        self._id: str = context.replica_id.unique_id
        self._prefixes: OrderedDict[str, None] = OrderedDict()
        self._streams = 0  # generate() calls open now (accepted, not yet ended)
        self._requests = 0  # generate() calls accepted since the replica started
        model_id = self._settings.model_to_load
        if model_id is None:
            raise ValueError("a cluster replica needs a model (the `model` setting)")
        registry = ModelRegistry(
            self._engine,
            Catalog.builtin(self._settings.models_dir),
            ModelStore(self._settings.models_dir, self._settings.storage_quota_gb),
        )
        await registry.load(model_id)
        logger.info("replica %s serves %s (pid %d)", self._id, model_id, os.getpid())
        url = redis_url_of(self._settings.rate_limit_storage)
        self._reports = ReplicaReports(url, context.app_name) if url else None
        self._publisher = asyncio.create_task(self._publish_forever())

    # ---- Serve calls ------------------------------------------------------------
    async def generate(
        self, request: dict[str, Any], avoid: list[str] | None = None, rendered: str | None = None
    ) -> AsyncIterator[list[Any]]:
        # `avoid` and `rendered` (the prompt's start as the ingress rendered it) are read by
        # the router (router.py); `rendered` also keys the prefixes this replica reports.
        self._streams += 1
        self._requests += 1
        handle = None
        finished = False
        try:
            yield ["R", self._id]
            self._remember(prefix_key(request, rendered=rendered))
            # The ingress's perf_counter means nothing on another machine: timings start here.
            decoded = dataclasses.replace(decode_request(request), submitted_at=time.perf_counter())
            handle = self._engine.submit(decoded)
            async for event in handle.events():
                yield encode_event(event)
            finished = True
        finally:
            self._streams -= 1
            if handle is not None and not finished:  # the ingress cancelled, or it broke
                handle.cancel()

    def info(self) -> dict[str, Any]:
        return self.report()

    # Model operations answer {"ok": result} or {"error": encoded error}: the ingress
    # raises the same BrowserLLMError (a Serve call would wrap it in a RayTaskError).
    async def tokenize(self, text: str, add_special: bool, parse_special: bool) -> dict[str, Any]:
        return await _answer(self._engine.tokenize(text, add_special, parse_special))

    async def detokenize(
        self, tokens: list[int], remove_special: bool, unparse_special: bool
    ) -> dict[str, Any]:
        return await _answer(self._engine.detokenize(tokens, remove_special, unparse_special))

    async def embed(self, texts: list[EmbedInput]) -> dict[str, Any]:
        return await _answer(self._engine.embed(texts))

    def check_health(self) -> None:
        """Serve restarts a replica whose check raises: its engine process is marked failed
        (a crash loop) or stopped, or no model is loaded, or it was ever wedged. A wedged
        engine process is killed at once (engine/process/wedge.py: its running requests end,
        queued ones run on the restarted process), and the replica stays unhealthy so
        Serve replaces it: a step that never returned points at the node (a driver, the
        hardware, memory), and a fresh replica may land elsewhere."""
        engine = self._engine
        if engine.info.wedged_restarts:
            raise RuntimeError(f"engine was wedged: {engine.info.last_exit}")
        if engine.state == "error" or engine.info.state in ("failed", "stopped"):
            raise RuntimeError(f"engine is dead: {engine.not_loaded_reason() or engine.state}")
        if engine.model is None and engine.state != "loading":
            raise RuntimeError("engine has no model loaded")

    def record_routing_stats(self) -> dict[str, Any]:
        report = self.report()
        return {"free_slots": report["free_slots"], "prefixes": len(report["prefixes"])}

    def __del__(self) -> None:
        # Serve's graceful shutdown: running requests had graceful_shutdown_wait_loop_s.
        publisher = getattr(self, "_publisher", None)
        if publisher is not None:
            publisher.cancel()
        engine = getattr(self, "_engine", None)
        if engine is not None:
            engine.shutdown()

    # ---- reports ------------------------------------------------------------------
    def report(self) -> dict[str, Any]:
        engine = self._engine
        stats = engine.stats()
        model = engine.model
        slots = self._settings.sequences
        return {
            "replica": self._id,
            "pid": os.getpid(),
            "engine_pid": engine.info.pid,
            "state": engine.state,
            "model": encode_model(model) if model is not None else None,
            "slots": slots,
            "free_slots": max(0, slots - stats.running),
            "streams": self._streams,
            "requests": self._requests,
            "stats": dataclasses.asdict(stats),
            "prefixes": list(self._prefixes),
            "reported_at": time.time(),
        }

    def _remember(self, key: str) -> None:
        digest = prefix_digest(key)  # not the text: prompts never appear in /status
        self._prefixes[digest] = None
        self._prefixes.move_to_end(digest)
        while len(self._prefixes) > _PREFIXES_KEPT:
            self._prefixes.popitem(last=False)

    async def _publish_forever(self) -> None:
        if self._reports is None:
            return
        while True:
            try:
                await self._reports.publish(self._id, self.report())
            except Exception as exc:  # Redis away: /status goes stale, serving goes on
                logger.warning("replica %s could not publish its report: %s", self._id, exc)
            await asyncio.sleep(_REPORT_EVERY_S)


async def _answer(call: Awaitable[Any]) -> dict[str, Any]:
    try:
        result = await call
    except BrowserLLMError as error:
        return {"error": encode_error(error)}
    if dataclasses.is_dataclass(result) and not isinstance(result, type):
        return {"ok": dataclasses.asdict(result)}
    return {"ok": result}
