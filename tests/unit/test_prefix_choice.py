"""The cluster router's choice, without Ray: rendezvous order per prefix, the load guard."""

from __future__ import annotations

from collections import Counter

from browser_llm.cluster.prefix_choice import prefix_key, rank_replicas, rendezvous_order

REPLICAS = ["r-a", "r-b", "r-c"]


def _request(prompt: str | None = None, messages: list[list[str]] | None = None) -> dict:  # type: ignore[type-arg]
    return {"prompt": prompt, "messages": messages}


def test_prefix_key_takes_the_start_of_prompt_or_messages() -> None:
    long = "You are a helpful assistant. " * 20
    assert prefix_key(_request(long + "Q1"), 64) == prefix_key(_request(long + "Q2"), 64)
    assert prefix_key(_request("abc")) != prefix_key(_request(messages=[["user", "abc"]]))
    calls = [["assistant", "", [["c1", "f", "{}"]], None], ["tool", "ok", [], "c1"]]
    assert prefix_key(_request(messages=[["user", "a"], *calls]), 100).startswith("m:user")
    a = prefix_key(_request(messages=[["system", long], ["user", "x"]]), 100)
    b = prefix_key(_request(messages=[["system", long], ["user", "y"]]), 100)
    assert a == b


def test_the_rendered_prompt_keys_a_request_when_the_ingress_has_it() -> None:
    rendered = "<|im_start|>user\nabc<|im_end|>\n<|im_start|>assistant\n"
    as_prompt = prefix_key(_request("abc"), 64, rendered)
    as_message = prefix_key(_request(messages=[["user", "abc"]]), 64, rendered)
    assert as_prompt == as_message == "r:" + rendered[:64]


def test_rendezvous_order_is_stable_and_ignores_list_order() -> None:
    order = rendezvous_order("p:key", REPLICAS)
    assert sorted(order) == sorted(REPLICAS)
    assert rendezvous_order("p:key", list(reversed(REPLICAS))) == order


def test_prefixes_spread_over_replicas() -> None:
    firsts = Counter(rendezvous_order(f"p:prefix {i}", REPLICAS)[0] for i in range(300))
    assert set(firsts) == set(REPLICAS)
    assert min(firsts.values()) > 50  # roughly even (expected 100 each)


def test_removing_a_replica_moves_only_its_prefixes() -> None:
    keys = [f"p:prefix {i}" for i in range(200)]
    before = {k: rendezvous_order(k, REPLICAS)[0] for k in keys}
    after = {k: rendezvous_order(k, ["r-a", "r-b"])[0] for k in keys}
    for key in keys:
        if before[key] != "r-c":
            assert after[key] == before[key]


def test_preferred_replica_first_while_it_has_free_slots() -> None:
    order = rendezvous_order("p:hot", REPLICAS)
    ranked = rank_replicas("p:hot", REPLICAS, {order[0]: 3}, spill_at=4)
    assert ranked[0] == order[0]


def test_a_full_replica_spills_to_the_next_in_order() -> None:
    order = rendezvous_order("p:hot", REPLICAS)
    ranked = rank_replicas("p:hot", REPLICAS, {order[0]: 4}, spill_at=4)
    assert ranked == [order[1], order[2], order[0]]


def test_all_full_goes_least_loaded_first() -> None:
    load = dict(zip(REPLICAS, [9, 5, 7], strict=True))
    assert rank_replicas("p:x", REPLICAS, load, spill_at=4) == ["r-b", "r-c", "r-a"]


def test_avoided_replica_comes_last_even_when_preferred_and_idle() -> None:
    order = rendezvous_order("p:k", REPLICAS)
    ranked = rank_replicas("p:k", REPLICAS, {}, spill_at=4, avoid=[order[0]])
    assert ranked[-1] == order[0] and len(ranked) == 3


def test_hot_prefix_never_piles_past_spill_at_while_others_are_free() -> None:
    """12 requests of one prefix on 2 replicas of 4 slots: 4 + 4, then least loaded."""
    load: Counter[str] = Counter()
    for _ in range(12):
        load[rank_replicas("p:hot", ["r-a", "r-b"], load, spill_at=4)[0]] += 1
    assert max(load.values()) <= 8 and sum(load.values()) == 12
    assert abs(load["r-a"] - load["r-b"]) <= 1
