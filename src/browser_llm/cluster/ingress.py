"""The Serve ingress: the unchanged FastAPI app (seed API, /v1, WebSocket, web page,
/metrics) on a RemoteEngine that forwards to the engine deployment's replicas."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from ray import serve
from ray.serve.handle import DeploymentHandle

from browser_llm.api.app import create_app
from browser_llm.cluster.remote_engine import RemoteEngine
from browser_llm.cluster.reports import ReplicaReports, redis_url_of
from browser_llm.config import Settings

__all__ = ["Ingress"]


class Ingress:
    """app.py wraps it with serve.ingress() (late-bound: __serve_build_asgi_app__)."""

    # Serve awaits an async constructor.
    async def __init__(  # type: ignore[misc]
        self, engine: DeploymentHandle, settings: dict[str, Any]
    ) -> None:
        # The replicas load the model; the edge loads none (its registry sees theirs).
        self._settings = Settings(**{**settings, "model": "none"})
        url = redis_url_of(self._settings.rate_limit_storage)
        reports = ReplicaReports(url, serve.get_replica_context().app_name) if url else None
        self._engine = RemoteEngine(engine, reports)
        # Until one replica answers there is no model to route to.
        await self._engine.refresh()

    def __serve_build_asgi_app__(self) -> FastAPI:
        return create_app(self._settings, engine=self._engine)
