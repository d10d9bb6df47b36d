"""The Serve application: `serve run deploy/serve-cluster.yaml` (import path
browser_llm.cluster.app:build_app; the YAML's `args` are ClusterArgs).

Two deployments: `engine` (EngineReplica, one model per replica, routed by
PrefixAwareRouter) and `ingress` (the FastAPI app on a RemoteEngine).
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field
from ray import serve
from ray.serve.config import BackpressureConfig, RequestRouterConfig
from ray.serve.deployment import Application

from browser_llm.cluster.ingress import Ingress
from browser_llm.cluster.prefix_choice import DEFAULT_PREFIX_CHARS
from browser_llm.cluster.replica import EngineReplica
from browser_llm.cluster.router import DEFAULT_HOLD_S, PrefixAwareRouter
from browser_llm.config import DEFAULT_MODEL_ID

__all__ = ["ClusterArgs", "build_app"]


class ClusterArgs(BaseModel):
    """The `args` of the application in the Serve config."""

    model: str = Field(DEFAULT_MODEL_ID, description="The model every replica loads")
    replicas: int = Field(2, ge=1, description="Engine replicas (fixed count)")
    min_replicas: int | None = Field(None, ge=0, description="Autoscaling lower bound")
    max_replicas: int | None = Field(None, ge=1, description="Autoscaling upper bound")
    # Ray sets OMP_NUM_THREADS to an actor's num_cpus: llama.cpp threads = CPUs reserved.
    threads: int = Field(1, ge=1, description="llama.cpp threads = num_cpus per replica")
    context_size: int = Field(2048, ge=256)
    parallel: int = Field(4, ge=1, description="Sequences decoded together per replica")
    max_queue: int = Field(8, ge=0, description="Requests that may wait on one replica")
    redis: str | None = Field(
        None, description="redis://host:port: shared rate limits and the replicas' reports"
    )
    shutdown_grace_s: float = Field(30.0, ge=0, description="How long a stopping replica drains")
    prefix_chars: int = Field(DEFAULT_PREFIX_CHARS, ge=1, description="Routing prefix length")
    hold_s: float = Field(
        DEFAULT_HOLD_S,
        ge=0,
        description="How long a generation waits at the ingress for a free slot on any "
        "replica before it queues on the least loaded one",
    )
    ingress_headroom: int = Field(
        32,
        ge=1,
        description="Requests the ingress takes past its admission bound: health, status, "
        "metrics, model listings, open WebSockets and the fast 503s themselves",
    )
    settings: dict[str, Any] = Field(
        default_factory=dict, description="Any other Settings field, for ingress and replicas"
    )

    def replica_settings(self) -> dict[str, Any]:
        base: dict[str, Any] = {
            **self.settings,
            "model": self.model,
            "threads": self.threads,
            "context_size": self.context_size,
            "parallel": self.parallel,
            "max_queue": self.max_queue,
            "shutdown_grace_s": self.shutdown_grace_s,
        }
        if self.redis:
            base["rate_limit_storage"] = self.redis
        return base

    def ingress_settings(self) -> dict[str, Any]:
        # The edge's admission bound covers every replica's slots and queue.
        top = self.max_replicas or self.replicas
        return {
            **self.replica_settings(),
            "parallel": min(64, self.parallel * top),
            "max_queue": self.max_queue * top,
        }

    def ingress_options(self) -> dict[str, Any]:
        # The app itself admits `parallel + max_queue` generations (ingress_settings) and
        # answers the next with the spec's 503 OVERLOADED; Serve's own limit sits above
        # that by the headroom, so health, status and the 503s never wait behind
        # generations. Past it the proxy queues at most the headroom, then answers
        # Serve's own 503 (plain text, Retry-After): a backstop for a flood.
        edge = self.ingress_settings()
        return {
            "name": "ingress",
            "ray_actor_options": {"num_cpus": 0},
            "graceful_shutdown_timeout_s": self.shutdown_grace_s,
            "max_ongoing_requests": edge["parallel"] + edge["max_queue"] + self.ingress_headroom,
            "max_queued_requests": self.ingress_headroom,
            "backpressure_config": BackpressureConfig(status_code=503, retry_after_s=1),
        }

    def engine_options(self) -> dict[str, Any]:
        options: dict[str, Any] = {
            "name": "engine",
            "ray_actor_options": {"num_cpus": self.threads},
            "max_ongoing_requests": self.parallel + self.max_queue,
            "graceful_shutdown_wait_loop_s": 1.0,
            "graceful_shutdown_timeout_s": self.shutdown_grace_s,
            "health_check_period_s": 5.0,
            "health_check_timeout_s": 30.0,
            "request_router_config": RequestRouterConfig(
                request_router_class=PrefixAwareRouter,
                request_router_kwargs={
                    "spill_at": self.parallel,
                    "prefix_chars": self.prefix_chars,
                    "hold_s": self.hold_s,
                },
                # A held generation is routed again after at most this (Serve's 0.5 s
                # default would leave a freed slot idle that long).
                initial_backoff_s=0.02,
                max_backoff_s=0.1,
            ),
        }
        if self.min_replicas is not None or self.max_replicas is not None:
            options["autoscaling_config"] = {
                "min_replicas": self.min_replicas if self.min_replicas is not None else 1,
                "max_replicas": self.max_replicas or self.replicas,
                "initial_replicas": self.replicas,
                "target_ongoing_requests": self.parallel,
            }
        else:
            options["num_replicas"] = self.replicas
        return options


def build_app(args: dict[str, Any]) -> Application:
    """Serve's application builder (called by `serve run` / `serve deploy`)."""
    config = ClusterArgs(**args)
    engine = serve.deployment(EngineReplica).options(**config.engine_options())
    ingress = serve.deployment(serve.ingress()(Ingress)).options(**config.ingress_options())
    replicas = engine.bind(config.replica_settings())
    app: Application = ingress.bind(replicas, config.ingress_settings())
    return app
