"""Prefix-aware routing with a load guard, on Ray Serve's public request-router API.

Serve's request-router API (`ray.serve.request_router`) is alpha: it is written against
ray[serve]==2.60.0, which the `[cluster]` extra pins. The choice itself is prefix_choice.py.

Ray's own PrefixCacheAffinityRouter reads `.messages` off the request first, which our
wire-encoded requests do not carry as an attribute, and has no notion of our slots; this
router reads the encoded request (generate's first argument) instead.

Load: the requests this router sent to each replica and that have not completed
(on_send_request / on_request_completed), plus those it has just chosen it for. The app
runs one ingress replica, so that count is exact. Serve's cached queue lengths are not
used: after streams were cancelled they still said 4 of 4 for up to their 10 s timeout, and
an idle replica then looked full (requests held, or sent past their prefix's replica).

Holding: while every replica's slots are full, a generation is not queued on one of them:
choose_replicas returns no replica and Serve asks again after a short backoff, so the
request takes the first slot that frees on any replica, or a replica that has just come up
(after a replica died under load it would otherwise wait for the survivor's slots). A
request is held at most `hold_s`, then it queues on the least loaded replica as before.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from ray.serve.request_router import (
    PendingRequest,
    ReplicaID,
    RequestRouter,
    RunningReplica,
)

from browser_llm.cluster.prefix_choice import (
    DEFAULT_PREFIX_CHARS,
    has_free_slot,
    prefix_key,
    rank_replicas,
)

__all__ = ["PrefixAwareRouter"]

logger = logging.getLogger(__name__)

_RESERVATION_S = 5.0  # a choice not followed by a send within this is forgotten
DEFAULT_HOLD_S = 30.0


class PrefixAwareRouter(RequestRouter):  # type: ignore[misc]
    """Same prefix -> same replica while it has a free slot; else the next in its order."""

    def initialize_state(
        self,
        spill_at: int = 4,
        prefix_chars: int = DEFAULT_PREFIX_CHARS,
        hold_s: float = DEFAULT_HOLD_S,
        **kwargs: Any,
    ) -> None:
        # spill_at: the replica's sequences (slots); past them a request would only queue.
        self._spill_at = max(1, int(spill_at))
        self._prefix_chars = int(prefix_chars)
        self._hold_s = float(hold_s)
        self._in_flight: dict[str, int] = {}  # replica unique id -> requests not completed
        # Requests chosen for a replica but not sent yet: Serve routes many requests at
        # once, and without these they would all see the same idle preferred replica.
        self._reserved: dict[str, tuple[str, float]] = {}  # request id -> (replica, when)

    def _load(self, replica: RunningReplica) -> int:
        rid = replica.replica_id.unique_id
        reserved = sum(1 for chosen, _ in self._reserved.values() if chosen == rid)
        return self._in_flight.get(rid, 0) + reserved

    def _expire_reservations(self) -> None:
        stale = time.monotonic() - _RESERVATION_S
        for request_id in [k for k, (_, when) in self._reserved.items() if when < stale]:
            del self._reserved[request_id]

    async def choose_replicas(
        self,
        candidate_replicas: list[RunningReplica],
        pending_request: PendingRequest | None = None,
    ) -> list[list[RunningReplica]]:
        if not candidate_replicas:
            return []
        by_id = {r.replica_id.unique_id: r for r in candidate_replicas}
        self._expire_reservations()
        key, avoid = "", ()
        request_id = pending_request.metadata.internal_request_id if pending_request else None
        if request_id is not None:
            self._reserved.pop(request_id, None)  # chosen again (a retry): count it once
        if pending_request is not None and pending_request.args:
            request = pending_request.args[0]
            if isinstance(request, dict):
                rendered = pending_request.kwargs.get("rendered")
                key = prefix_key(request, self._prefix_chars, rendered)
            avoid = tuple(pending_request.kwargs.get("avoid") or ())
        load = {rid: self._load(r) for rid, r in by_id.items()}
        if pending_request is not None:
            # Our ranking is final: when no replica takes the request (held, or all
            # rejected it), Serve must sleep before asking again. Without this flag it asks
            # again at once, and choose_replicas never awaits: a held request spun the
            # handle's event loop, which then missed the controller's replica updates.
            pending_request.routing_context.should_backoff = True
        if self._hold(pending_request, load, avoid):
            return []  # Serve asks again after its backoff (app.py sets it short)
        ranked = rank_replicas(key, list(by_id), load, self._spill_at, avoid)
        if request_id is not None:
            self._reserved[request_id] = (ranked[0], time.monotonic())
        # One replica per rank: Serve tries them in this order and skips a full one.
        return [[by_id[rid]] for rid in ranked]

    def _hold(
        self, pending: PendingRequest | None, load: dict[str, int], avoid: tuple[str, ...]
    ) -> bool:
        # Only generations: tokenize, embed and info do not take a slot.
        if pending is None or pending.metadata.call_method != "generate":
            return False
        if pending.future.done():
            # Cancelled while held (its client went away): Serve notices only once it is
            # offered a replica; held, it would keep a routing task until hold_s.
            return False
        if has_free_slot(list(load), load, self._spill_at, avoid):
            return False
        held_s: float = time.time() - pending.created_at
        return held_s < self._hold_s

    @property
    def max_num_routing_tasks(self) -> int:
        # Each held generation keeps one of Serve's routing tasks; its default (2 per
        # replica) would leave none for a tokenize or embed call while 4 are held.
        cap: int = self.max_num_routing_tasks_cap
        return cap

    def on_send_request(self, replica_id: ReplicaID) -> None:
        # Serve calls this for every request it sends (with or without its rejection
        # protocol; on_request_routed only comes with it), then on_request_completed once.
        super().on_send_request(replica_id)
        rid = replica_id.unique_id
        self._in_flight[rid] = self._in_flight.get(rid, 0) + 1
        # The request id is not passed here: release the oldest reservation for this replica.
        mine = [(when, k) for k, (chosen, when) in self._reserved.items() if chosen == rid]
        if mine:
            del self._reserved[min(mine)[1]]

    def on_request_completed(self, replica_id: ReplicaID, internal_request_id: str) -> None:
        rid = replica_id.unique_id
        self._in_flight[rid] = max(0, self._in_flight.get(rid, 0) - 1)
        self._reserved.pop(internal_request_id, None)
