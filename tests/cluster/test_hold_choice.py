"""When the router holds a generation instead of queueing it (prefix_choice.has_free_slot),
without Ray."""

from __future__ import annotations

from browser_llm.cluster.prefix_choice import has_free_slot

IDS = ["r-a", "r-b"]


def test_a_replica_under_its_slots_takes_the_request() -> None:
    assert has_free_slot(IDS, {"r-a": 4, "r-b": 3}, 4)
    assert has_free_slot(IDS, {"r-a": 4}, 4)  # no count yet: a new replica, empty


def test_every_replica_full_holds_it() -> None:
    assert not has_free_slot(IDS, {"r-a": 4, "r-b": 5}, 4)
    assert not has_free_slot([], {}, 4)  # no replica at all


def test_the_replica_to_avoid_does_not_count_as_free() -> None:
    # A request retried after its replica died: that one may still look empty.
    assert not has_free_slot(IDS, {"r-a": 4, "r-b": 0}, 4, avoid=["r-b"])
    assert has_free_slot(IDS, {"r-a": 3, "r-b": 0}, 4, avoid=["r-b"])
