"""Which replica should serve a prompt: rendezvous hashing on a prefix, with a load guard.

Pure logic, no Ray: router.py feeds it replica ids and loads. Requests that share a
prompt prefix prefer the same replica, whose engine then reuses that prefix's KV cells
(prefix_cache). A replica that already runs `spill_at` requests is passed over for the
next one in the same prefix's order, so one hot system prompt spreads instead of piling
every request onto one replica. Rendezvous (highest random weight) hashing moves only the
prefixes of a replica that comes or goes.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from typing import Any

__all__ = [
    "DEFAULT_PREFIX_CHARS",
    "has_free_slot",
    "prefix_digest",
    "prefix_key",
    "rank_replicas",
    "rendezvous_order",
]

# The first characters of the prompt: system prompts and few-shot headers that repeat
# across requests sit there.
DEFAULT_PREFIX_CHARS = 256


def prefix_key(
    request: Mapping[str, Any], chars: int = DEFAULT_PREFIX_CHARS, rendered: str | None = None
) -> str:
    """The routing key of a request in engine/process/wire.py's encoded form. `rendered`: the prompt
    as the model's chat template writes it (what the replica's KV cells will hold), when the
    ingress could render it; then a plain prompt and the same text sent as one user message
    share a key. Without it, the raw text as sent."""
    if rendered is not None:
        return "r:" + rendered[:chars]
    messages = request.get("messages")
    if messages:
        # Each is [role, content] or, with tool calls, [role, content, calls, call id].
        text = "\x1e".join(f"{m[0]}\x1f{m[1]}" for m in messages)
        return "m:" + text[:chars]
    return "p:" + str(request.get("prompt") or "")[:chars]


def prefix_digest(key: str) -> str:
    """A short digest of a routing key: what replicas report, never the prompt text."""
    return hashlib.blake2b(key.encode(), digest_size=6).hexdigest()


def _weight(key: str, replica_id: str) -> int:
    digest = hashlib.blake2b(f"{key}\x00{replica_id}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big")


def rendezvous_order(key: str, replica_ids: Sequence[str]) -> list[str]:
    """Replica ids from most to least preferred for this key (stable for a given set)."""
    return sorted(replica_ids, key=lambda rid: (_weight(key, rid), rid), reverse=True)


def rank_replicas(
    key: str,
    replica_ids: Sequence[str],
    load: Mapping[str, int],
    spill_at: int,
    avoid: Sequence[str] = (),
) -> list[str]:
    """All replica ids, best first.

    Replicas under `spill_at` running requests come first, in the key's rendezvous order;
    full ones follow, least loaded first; replicas in `avoid` (one that just failed this
    request) come last whatever their load.
    """
    order = rendezvous_order(key, replica_ids)
    position = {rid: i for i, rid in enumerate(order)}
    usable = [rid for rid in order if rid not in avoid]
    free = [rid for rid in usable if load.get(rid, 0) < spill_at]
    full = sorted(
        (rid for rid in usable if load.get(rid, 0) >= spill_at),
        key=lambda rid: (load.get(rid, 0), position[rid]),
    )
    return free + full + [rid for rid in order if rid in avoid]


def has_free_slot(
    replica_ids: Sequence[str], load: Mapping[str, int], spill_at: int, avoid: Sequence[str] = ()
) -> bool:
    """Whether a replica outside `avoid` runs fewer than `spill_at` requests. When none does,
    the router holds a generation instead of queueing it on a full replica: it then takes
    the first slot that frees anywhere, or a replica that has just come up (a replacement),
    not only the slots of the replica it would have queued on."""
    return any(load.get(rid, 0) < spill_at for rid in replica_ids if rid not in avoid)
