"""GET /debug/logs and GET /debug/profile; GET /metrics (Prometheus)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request, Response
from pydantic import BaseModel, Field

from browser_llm.api.envelope import ok
from browser_llm.api.services import services
from browser_llm.api.spec.common import ERROR_RESPONSES
from browser_llm.api.spec.schemas import Envelope
from browser_llm.core.errors import ValidationError
from browser_llm.observability.profile import METRICS
from browser_llm.observability.shared import merged_exposition, merged_names, merged_points

__all__ = ["metrics_router", "router"]

router = APIRouter(tags=["debug"])
metrics_router = APIRouter(tags=["metrics"])

MAX_LOGS = 1000


class LogEntry(BaseModel):
    level: str
    service: str
    message: str
    data: Any | None = None
    timestamp: float = Field(description="Unix time, seconds")
    stack: str | None = None


class DebugLogsResponse(BaseModel):
    logs: list[LogEntry]


class MetricValue(BaseModel):
    value: float
    timestamp: float
    tags: dict[str, str] | None = None


class Aggregations(BaseModel):
    """Left out (only `count: 0`) when the range holds no points: nothing was measured."""

    count: int = Field(description="Extension: points aggregated")
    avg: float | None = None
    min: float | None = None
    max: float | None = None
    p50: float | None = None
    p95: float | None = None
    p99: float | None = None


# Past this a `since` cannot be seconds (the year 5138): it is read as milliseconds,
# what a JavaScript client's Date.now() gives.
_MS_FROM = 1e11


def since_seconds(since: float | None) -> float | None:
    return since / 1000 if since is not None and since > _MS_FROM else since


_SINCE = "Unix time in seconds, or in milliseconds (values above 1e11, as Date.now() gives)"


class MetricSeries(BaseModel):
    name: str
    values: list[MetricValue]
    aggregations: Aggregations


class ProfileResponse(BaseModel):
    metrics: list[MetricSeries]


@router.get(
    "/debug/logs",
    response_model=Envelope[DebugLogsResponse],
    responses=ERROR_RESPONSES,
    summary="Recent server log records (newest last)",
)
async def debug_logs(
    request: Request,
    level: Annotated[Literal["debug", "info", "warn", "error"], Query()] = "debug",
    since: Annotated[float | None, Query(ge=0, description=_SINCE)] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_LOGS)] = 100,
) -> Response:
    buffer = services(request).logs
    records = buffer.query(level, since_seconds(since), limit)
    rows = [LogEntry.model_validate(r.as_dict()) for r in records]
    return ok(request, DebugLogsResponse(logs=rows), exclude_none=True)


@router.get(
    "/debug/profile",
    response_model=Envelope[ProfileResponse],
    responses=ERROR_RESPONSES,
    summary="Measured time series with avg/min/max/p50/p95/p99",
)
async def debug_profile(
    request: Request,
    since: Annotated[float | None, Query(ge=0, description=_SINCE)] = None,
    metric: Annotated[str | None, Query(max_length=64)] = None,
) -> Response:
    svc = services(request)
    profile = svc.stats.profile
    if metric is not None and metric not in METRICS:
        raise ValidationError(
            f"metric: unknown metric '{metric}'", {"field": "metric", "known": sorted(METRICS)}
        )
    # With a shared Redis: every server process's points (observability/shared.py).
    peers = await svc.peers.read() if svc.peers is not None else []
    names = [metric] if metric else merged_names(profile, peers)
    series = []
    for name in names:
        points = merged_points(profile, peers, name, since_seconds(since))
        agg = profile.aggregate(points)
        series.append(
            MetricSeries(
                name=name,
                values=[
                    MetricValue(value=p.value, timestamp=p.timestamp, tags=p.tags or None)
                    for p in points
                ],
                aggregations=Aggregations(**agg.__dict__),
            )
        )
    return ok(request, ProfileResponse(metrics=series), exclude_none=True)


@metrics_router.get(
    "/metrics",
    summary="Prometheus metrics (text exposition format)",
    response_class=Response,
    responses={200: {"content": {"text/plain": {}}}},
)
async def prometheus_metrics(request: Request) -> Response:
    svc = services(request)
    stats, engine, generation = svc.stats, svc.engine, svc.generation
    model = engine.model
    engine_stats = engine.stats()
    body = stats.prometheus.render(
        queued=generation.waiting,
        running=engine_stats.running,
        model_id=model.model_id if model is not None else None,
        state=engine.state,
        engine={
            "restarts": engine_stats.restarts,
            "wedged_restarts": _wedged_restarts(engine_stats.details.get("process")),
            "threads": engine_stats.threads,
            "foreign_load": engine_stats.foreign_load,
            "step_ms": engine_stats.step_ms,
            "prompt_cache_bytes": engine_stats.prompt_cache_bytes,
            "prompt_cache_entries": engine_stats.prompt_cache_entries,
            "prompt_cache_lookups": engine_stats.prompt_cache_lookups,
            "prompt_cache_hits": engine_stats.prompt_cache_hits,
            "draft_tokens": engine_stats.draft_tokens,
            "draft_tokens_accepted": engine_stats.draft_tokens_accepted,
        },
    )
    if svc.peers is not None:  # request counts summed over every server process
        body = merged_exposition(stats.prometheus.registry, await svc.peers.read())
    return Response(body, media_type="text/plain; version=0.0.4; charset=utf-8")


def _wedged_restarts(process: dict[str, object] | None) -> float:
    value = (process or {}).get("wedged_restarts", 0)
    return float(value) if isinstance(value, int | float) else 0.0
