"""/debug/profile and /metrics for several server processes that share one Redis.

Each process publishes a snapshot of what it alone measured (its profile points, and its
request counters and histograms) under its own key with a TTL; the store itself lives in
cluster/shared_observability.py (the only Redis code). Any process then answers for all:
profile aggregations over the union of the points, counters and histogram buckets summed
per label set. Engine gauges are not summed: the answering process renders them from its
engine's stats (in a cluster those already cover every replica, from their reports).

Nothing here imports Redis; without it (`peers` is None) a process answers for itself.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any, Protocol

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector

from browser_llm.observability.profile import Point, Profile

__all__ = [
    "SHARED_FAMILIES",
    "ObservabilityPeers",
    "merged_exposition",
    "merged_names",
    "merged_points",
    "snapshot",
]

# What each process counts for the requests it handled: summed across processes.
SHARED_FAMILIES = frozenset(
    {
        "browser_llm_http_requests",
        "browser_llm_time_to_first_token_seconds",
        "browser_llm_decode_tokens_per_second",
        "browser_llm_generated_tokens",
        "browser_llm_generations",
        "browser_llm_queue_depth",
    }
)


class ObservabilityPeers(Protocol):
    """Publishes this process's snapshot; reads the others' (never its own)."""

    def start(self) -> None: ...

    async def read(self) -> list[dict[str, Any]]: ...

    async def close(self) -> None: ...


def snapshot(profile: Profile, registry: CollectorRegistry) -> dict[str, Any]:
    """This process's own measurements, as plain JSON."""
    points = {
        name: [[p.value, p.timestamp, p.tags] for p in profile.points(name)]
        for name in profile.names()
    }
    samples = [
        [family.name, family.type, family.documentation, s.name, s.labels, s.value]
        for family in registry.collect()
        if family.name in SHARED_FAMILIES
        for s in family.samples
    ]
    return {"profile": points, "samples": samples}


def merged_points(
    profile: Profile, peers: list[dict[str, Any]], name: str, since: float | None
) -> list[Point]:
    """This process's points of `name` and every peer's, oldest first."""
    points = profile.points(name, since)
    for peer in peers:
        for value, timestamp, tags in peer.get("profile", {}).get(name, ()):
            if since is None or timestamp >= since:
                points.append(Point(float(value), float(timestamp), dict(tags)))
    return sorted(points, key=lambda p: p.timestamp)


def merged_names(profile: Profile, peers: list[dict[str, Any]]) -> list[str]:
    names = set(profile.names())
    for peer in peers:
        names.update(peer.get("profile", {}))
    return sorted(names)


def merged_exposition(registry: CollectorRegistry, peers: list[dict[str, Any]]) -> bytes:
    """The exposition text of `registry` with the peers' shared families added in."""
    merged = CollectorRegistry(auto_describe=False)
    merged.register(_Merged(registry, peers))
    return generate_latest(merged)


class _Merged(Collector):
    def __init__(self, registry: CollectorRegistry, peers: list[dict[str, Any]]) -> None:
        self._registry, self._peers = registry, peers

    def collect(self) -> Iterator[Metric]:
        by_family: dict[str, list[list[Any]]] = {}
        for peer in self._peers:
            for row in peer.get("samples", ()):
                by_family.setdefault(str(row[0]), []).append(row)
        for family in self._registry.collect():
            if family.name not in SHARED_FAMILIES:
                yield family
                continue
            out = Metric(family.name, family.documentation, family.type)
            for sample_name, labels, value in _summed(family, by_family.pop(family.name, [])):
                out.add_sample(sample_name, labels, value)
            yield out


def _summed(
    family: Metric, peer_rows: Iterable[list[Any]]
) -> list[tuple[str, dict[str, str], float]]:
    """Values per (sample, labels): summed; `_created` (a start time) keeps the earliest."""
    totals: dict[tuple[str, tuple[tuple[str, str], ...]], float] = {}
    rows = [(s.name, s.labels, s.value) for s in family.samples]
    rows += [(str(r[3]), dict(r[4]), float(r[5])) for r in peer_rows]
    for sample_name, labels, value in rows:
        key = (sample_name, tuple(sorted(labels.items())))
        if key not in totals:
            totals[key] = value
        elif sample_name.endswith("_created"):
            totals[key] = min(totals[key], value)
        else:
            totals[key] += value
    return [(name, dict(labels), value) for (name, labels), value in totals.items()]
