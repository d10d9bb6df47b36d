"""The cluster tier: the unchanged API on Ray Serve replicas of the real engine.

One Serve app (2 replicas of the default model, 1 thread each) serves the whole module;
tests that kill a replica run last and wait for Serve to replace it. Outputs are never
hard-coded: replicas are compared with each other.
"""

from __future__ import annotations

import json
import signal
import threading
import time
from collections import Counter
from typing import Any

import httpx
import pytest

from browser_llm.engine.native.kv.slots import TILE_ROWS
from tests.cluster.conftest import WEDGED_S, Cluster
from tests.cluster.helpers import (
    digest_of,
    kill,
    preferred_replica,
    record_figure,
    sse_events,
    stream_all,
    wait_for,
)

pytest.importorskip("ray.serve", reason="the [cluster] extra is not installed")
pytestmark = pytest.mark.cluster

LONG = " ".join(f"word{i}" for i in range(60))  # some 200 tokens of shared prefix


def test_generate_rest_and_sse_through_the_ingress(cluster: Cluster) -> None:
    body = {"prompt": "Name three colours.", "max_tokens": 12, "temperature": 0}
    resp = cluster.api.post("/api/v1/generate", json=body)
    assert resp.status_code == 200, resp.text
    data = resp.json()["data"]
    assert data["model"] == "smollm2-135m-instruct-q4"
    assert data["usage"]["completion_tokens"] >= 1
    events = stream_all(cluster.api, body)
    assert events[-1]["type"] == "done"
    tokens = "".join(e["data"]["token"] for e in events if e["type"] == "token")
    assert tokens == events[-1]["data"]["completion"]["text"] == data["text"]
    # The OpenAI-compatible API runs on the same remote engine.
    chat = cluster.api.post(
        "/v1/chat/completions",
        json={"messages": [{"role": "user", "content": "Hi"}], "max_tokens": 5},
    )
    assert chat.status_code == 200, chat.text


def test_websocket_generate_through_the_serve_proxy(cluster: Cluster) -> None:
    """The /ws API through Serve's proxy: two generations on one socket, tokens then done."""
    from websockets.sync.client import connect

    prompts = {"a": "Name a colour.", "b": "Name an animal."}
    out: dict[str, dict[str, Any]] = {k: {"tokens": [], "end": None} for k in prompts}
    with connect(cluster.base_url.replace("http://", "ws://") + "/api/v1/ws") as ws:
        for key, prompt in prompts.items():
            payload = {"prompt": prompt, "max_tokens": 16, "temperature": 0}
            ws.send(json.dumps({"type": "generate", "id": key, "payload": payload}))
        while any(v["end"] is None for v in out.values()):
            msg = json.loads(ws.recv(timeout=120))
            if msg.get("id") not in out:
                continue
            if msg["type"] == "token":
                out[msg["id"]]["tokens"].append(msg["data"]["token"])
            elif msg["type"] in ("done", "error"):
                out[msg["id"]]["end"] = msg
    for key, result in out.items():
        end = result["end"]
        assert end["type"] == "done", end
        assert result["tokens"], key
        assert "".join(result["tokens"]) == end["data"]["completion"]["text"]


def test_tokenize_and_embeddings_run_on_a_replica(cluster: Cluster) -> None:
    text = "Héllo, wörld! 🙂"
    tokens = cluster.api.post("/api/v1/tokenize", json={"text": text})
    assert tokens.status_code == 200, tokens.text
    ids = tokens.json()["data"]["tokens"]
    back = cluster.api.post("/api/v1/detokenize", json={"tokens": ids})
    assert back.json()["data"]["text"] == text
    bad = cluster.api.post("/api/v1/detokenize", json={"tokens": [1, 10_000_000]})
    assert bad.status_code == 400  # the replica's error crosses as itself, not as a 500
    embedded = cluster.api.post("/v1/embeddings", json={"input": ["a cat", "a dog"]})
    assert embedded.status_code == 200, embedded.text
    vectors = [item["embedding"] for item in embedded.json()["data"]]
    assert len(vectors) == 2 and len(vectors[0]) == len(vectors[1]) > 0


def test_status_aggregates_every_replica(cluster: Cluster) -> None:
    status = cluster.status()
    assert status["status"] == "ready"
    replicas = status["engine"]["cluster"]["replicas"]
    assert len(replicas) == 2
    assert len({r["pid"] for r in replicas}) == 2
    assert status["engine"]["threads_max"] == 2  # 1 thread each, summed


def test_greedy_output_is_the_same_on_either_replica(cluster: Cluster) -> None:
    """E: the same greedy request, forced onto each replica through the engine handle."""
    from ray import serve

    from browser_llm.core.types import GenerationParams
    from browser_llm.engine.base import GenerationRequest
    from browser_llm.engine.process.wire import encode_request

    handle = serve.get_deployment_handle("engine", app_name="browser-llm")
    ids = [r["replica"] for r in cluster.replicas()]
    request = encode_request(
        GenerationRequest(
            prompt="Write one sentence about rivers.",
            params=GenerationParams(max_tokens=24, temperature=0),
        )
    )
    texts: dict[str, str] = {}
    for avoided in ids:
        served_by, text = None, None
        for item in handle.options(stream=True).generate.remote(request, avoid=[avoided]):
            if item[0] == "R":
                served_by = item[1]
            elif item[0] == "F":
                text = item[1]["text"]
        assert served_by is not None and served_by != avoided and text is not None
        texts[served_by] = text
    assert len(texts) == 2
    record_figure("E", replicas=len(texts), distinct_texts=len(set(texts.values())))
    assert len(set(texts.values())) == 1, texts


def test_same_prefix_requests_land_on_one_replica_and_reuse_its_cache(cluster: Cluster) -> None:
    """B: 6 prefixes x 6 requests, interleaved; each prefix stays on one replica.

    Three prefixes that the router's hash prefers on each replica: a replica has 4 slots,
    so 5 prefixes hashed onto one (1 run in 5 with random replica ids) could not all keep
    their cells whatever the routing."""
    ids = [r["replica"] for r in cluster.wait_for_replicas(2)]
    candidates = [f"Context {p}: {LONG}" for p in range(200)]
    prefixes = [
        p for rid in ids for p in [c for c in candidates if preferred_replica(c, ids) == rid][:3]
    ]
    cached: list[int] = []
    for round_ in range(6):
        for prefix in prefixes:
            body = {"prompt": f"{prefix}\nQuestion {round_}?", "max_tokens": 2, "temperature": 0}
            resp = cluster.api.post("/api/v1/generate", json=body)
            assert resp.status_code == 200, resp.text
            if round_ > 0:
                cached.append(resp.json()["data"]["usage"]["cached_prompt_tokens"])
    # At least 29 of the 30 follow-ups reused KV cells of their prefix: more than the
    # template's system turn (26 tokens) that every request shares with every other.
    reused = sum(1 for c in cached if c > TILE_ROWS)
    record_figure("B", follow_ups=len(cached), reused_cache=reused, cached_tokens=cached)
    assert reused >= 29, cached

    def placements() -> dict[str, list[str]] | None:
        where = {digest_of(p): [] for p in prefixes}  # type: dict[str, list[str]]
        for replica in cluster.replicas():
            for digest in replica["prefixes"]:
                if digest in where:
                    where[digest].append(replica["replica"])
        return where if all(where.values()) else None

    where = wait_for(placements, 15, "every prefix in a replica report")
    for prefix in prefixes:  # each on the replica the hash prefers
        assert where[digest_of(prefix)] == [preferred_replica(prefix, ids)], where
    record_figure("B", replicas_per_prefix=[len(r) for r in where.values()])
    assert all(len(replicas) == 1 for replicas in where.values()), where
    assert len({r[0] for r in where.values()}) == 2  # the prefixes spread over both


def test_a_prompt_and_the_same_text_as_a_message_share_a_replica(cluster: Cluster) -> None:
    """The router keys on the prompt as the template renders it: a plain prompt on the seed
    API and the same text as the one user message of a /v1 chat are the same tokens, so
    the chat finds the prompt's KV cells, as a repeat of the prompt itself does (keyed on
    the raw text they would meet by chance, 1 in 2 each: 1 in 64 for all six)."""
    chat_url = str(cluster.api.base_url.copy_with(path="/v1/chat/completions"))
    for n in range(6):
        text = f"Note {n}: {LONG}"
        body = {"prompt": text, "max_tokens": 1, "temperature": 0}
        first = cluster.api.post("/api/v1/generate", json=body)
        assert first.status_code == 200, first.text
        messages = [{"role": "user", "content": text}]
        chat = cluster.api.post(
            chat_url, json={"messages": messages, "max_tokens": 1, "temperature": 0}
        )
        assert chat.status_code == 200, chat.text
        again = cluster.api.post("/api/v1/generate", json=body)
        assert again.status_code == 200, again.text
        repeat_cached = again.json()["data"]["usage"]["cached_prompt_tokens"]
        assert repeat_cached > 0
        assert chat.json()["usage"]["prompt_tokens_details"]["cached_tokens"] == repeat_cached


def _requests_by_replica(cluster: Cluster) -> Counter[str]:
    """Requests each replica accepted, from reports written after every earlier one ended."""
    since = time.time()

    def settled() -> Counter[str] | None:
        replicas = cluster.replicas()
        if any(r["streams"] or r["reported_at"] < since for r in replicas):
            return None
        return Counter({r["replica"]: r["requests"] for r in replicas})

    return wait_for(settled, 15, "fresh replica reports")


def test_hot_prefix_spills_to_the_other_replica(cluster: Cluster) -> None:
    """C: 12 concurrent requests with one prefix: no replica takes more than 8."""
    before = _requests_by_replica(cluster)
    body = {
        "prompt": f"Shared system prompt. {LONG}\nGo.",
        "max_tokens": 16,
        "ignore_eos": True,
        "temperature": 0,
    }
    codes: list[int] = []

    def one() -> None:
        with httpx.Client(base_url=cluster.base_url, timeout=180) as api:
            codes.append(api.post("/api/v1/generate", json=body).status_code)

    threads = [threading.Thread(target=one) for _ in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert codes == [200] * 12

    served = _requests_by_replica(cluster)
    served.subtract(before)
    record_figure(
        "C", requests=len(codes), ok=codes.count(200), per_replica=sorted(served.values())
    )
    assert sum(served.values()) == 12, served
    assert max(served.values()) <= 8, served
    assert min(served.values()) >= 1, served


def _replica(cluster: Cluster, replica_id: str) -> dict[str, Any]:
    return next(r for r in cluster.replicas() if r["replica"] == replica_id)


def test_wedged_engine_fails_the_health_check_and_is_replaced(cluster: Cluster) -> None:
    """A replica's engine process stops (SIGSTOP) mid-stream: after WEDGED_S the replica's
    engine kills it, the stream ends with an explicit INFERENCE_ERROR (engine_wedged), the
    replica's health check fails from then on and Serve replaces it."""
    replicas = cluster.wait_for_replicas(2)
    prompt = "Wedge me: count slowly."
    victim_id = preferred_replica(prompt, [r["replica"] for r in replicas])
    victim = _replica(cluster, victim_id)
    body = {"prompt": prompt, "max_tokens": 900, "ignore_eos": True, "temperature": 0}
    events: list[dict[str, Any]] = []
    with cluster.api.stream("POST", "/api/v1/generate", json={**body, "stream": True}) as resp:
        assert resp.status_code == 200
        reader = sse_events(resp.iter_lines())
        events.append(next(reader))
        assert events[0]["type"] == "token"
        kill(victim["engine_pid"], signal.SIGSTOP)  # alive, owing work, answering nothing
        stopped = time.monotonic()
        events.extend(reader)
    # Detection: WEDGED_S plus a second of polling; the margin is for a busy machine.
    assert time.monotonic() - stopped < WEDGED_S + 30
    assert events[-1]["type"] == "error", events[-3:]
    assert events[-1]["data"]["code"] == "INFERENCE_ERROR"
    assert events[-1]["data"]["details"]["reason"] == "engine_wedged"
    kill(victim["engine_pid"])  # normally killed by its replica already
    # Serve replaces the unhealthy replica: a new id, two replicas ready again.
    wait_for(
        lambda: victim_id not in [r["replica"] for r in cluster.wait_for_replicas(2)] or None,
        120,
        "Serve to replace the wedged replica",
    )
    resp = cluster.api.post("/api/v1/generate", json={"prompt": prompt, "max_tokens": 4})
    assert resp.status_code == 200, resp.text


def test_replica_killed_before_the_first_token_is_retried(cluster: Cluster) -> None:
    """The replica accepted the request, its engine process is frozen, then it is killed:
    the request runs on the other replica and the client sees only success."""
    replicas = cluster.wait_for_replicas(2)
    prompt = "Retry me: what is two plus two?"
    victim_id = preferred_replica(prompt, [r["replica"] for r in replicas])
    victim = _replica(cluster, victim_id)
    retried_before = cluster.status()["engine"]["cluster"]["retried_requests"]
    kill(victim["engine_pid"], signal.SIGSTOP)  # no token can come from it now
    result: dict[str, Any] = {}

    def request() -> None:
        with httpx.Client(base_url=cluster.base_url, timeout=180) as api:
            resp = api.post("/api/v1/generate", json={"prompt": prompt, "max_tokens": 8})
            result["status"], result["body"] = resp.status_code, resp.json()

    thread = threading.Thread(target=request)
    thread.start()
    try:
        wait_for(lambda: _replica(cluster, victim_id)["streams"] >= 1, 30, "the victim's stream")
    finally:
        kill(victim["pid"])  # the replica actor ...
        kill(victim["engine_pid"])  # ... and its frozen engine process
    thread.join(timeout=180)
    assert result["status"] == 200, result
    assert result["body"]["data"]["usage"]["completion_tokens"] >= 1
    assert cluster.status()["engine"]["cluster"]["retried_requests"] == retried_before + 1
    cluster.wait_for_replicas(2)  # Serve replaced it


def test_replica_killed_under_load_cuts_no_stream_silently(cluster: Cluster) -> None:
    """A: 8 streams and 4 non-streaming requests in flight on both replicas, one killed:
    every stream ends with `done` or an explicit INFERENCE_ERROR event, every non-streaming
    request returns 200 (run again elsewhere), then 2 replicas serve the next 20."""
    cluster.wait_for_replicas(2)
    body = {"max_tokens": 60, "ignore_eos": True, "temperature": 0}
    endings: list[tuple[str, str | None]] = []
    plain: list[int] = []

    def streamed(i: int) -> None:
        with httpx.Client(base_url=cluster.base_url, timeout=180) as api:
            events = stream_all(api, {**body, "prompt": f"Story number {i}:"})
        assert all(e["type"] == "token" for e in events[:-1])
        last = events[-1]
        endings.append((last["type"], last["data"].get("code")))

    def buffered(i: int) -> None:
        with httpx.Client(base_url=cluster.base_url, timeout=180) as api:
            resp = api.post("/api/v1/generate", json={**body, "prompt": f"Poem number {i}:"})
            plain.append(resp.status_code)

    threads = [threading.Thread(target=streamed, args=(i,)) for i in range(8)]
    threads += [threading.Thread(target=buffered, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    busy = wait_for(
        lambda: [r for r in cluster.replicas() if r["streams"]] or None, 60, "busy replicas"
    )
    kill(busy[0]["pid"])
    killed_at = time.monotonic()
    for t in threads:
        t.join(timeout=300)
    kill(busy[0]["engine_pid"])
    kinds = [kind for kind, _ in endings]
    figure = {"streams_done": kinds.count("done"), "streams_error": kinds.count("error")}
    figure["non_streaming_200"] = plain.count(200)
    record_figure("A", **figure)
    assert len(endings) == 8 and len(plain) == 4
    assert all(
        kind == "done" or (kind == "error" and code == "INFERENCE_ERROR") for kind, code in endings
    ), endings
    assert plain == [200] * 4
    cluster.wait_for_replicas(2)
    back_s = time.monotonic() - killed_at
    codes = [
        cluster.api.post("/api/v1/generate", json={"prompt": f"Next {i}", "max_tokens": 4})
        for i in range(20)
    ]
    record_figure(
        "A",
        two_replicas_after_s=round(back_s, 1),
        next_20_ok=sum(1 for r in codes if r.status_code == 200),
    )
    assert all(r.status_code == 200 for r in codes), [r.text for r in codes]


def test_replica_killed_mid_stream_ends_with_inference_error(cluster: Cluster) -> None:
    cluster.wait_for_replicas(2)
    body = {
        "prompt": "Count slowly.",
        "max_tokens": 900,
        "ignore_eos": True,
        "temperature": 0,
        "stream": True,
    }
    events: list[dict[str, Any]] = []
    with cluster.api.stream("POST", "/api/v1/generate", json=body) as resp:
        assert resp.status_code == 200
        reader = sse_events(resp.iter_lines())
        events.append(next(reader))
        assert events[0]["type"] == "token"
        started = time.time()
        # A report made after the stream began: an older one may still show the previous
        # test's streams on the other replica (reports live 5 s).
        serving = wait_for(
            lambda: next(
                (r for r in cluster.replicas() if r["streams"] and r["reported_at"] > started),
                None,
            ),
            30,
            "the serving replica's report",
        )
        kill(serving["pid"])
        events.extend(reader)
    assert events[-1]["type"] == "error", events[-3:]
    assert events[-1]["data"]["code"] == "INFERENCE_ERROR"
    assert all(e["type"] == "token" for e in events[:-1])
    assert cluster.status()["engine"]["cluster"]["lost_mid_stream"] >= 1
    kill(serving["engine_pid"])  # normally gone with its replica's socket already
    cluster.wait_for_replicas(2)
    # The next requests all succeed.
    for i in range(5):
        resp = cluster.api.post("/api/v1/generate", json={"prompt": f"After {i}", "max_tokens": 4})
        assert resp.status_code == 200, resp.text


def test_scale_down_while_streams_run_cuts_none(cluster: Cluster) -> None:
    """F (last: it leaves one replica): 2 -> 1 replicas with streams on both; Serve drains
    the replica it stops (graceful_shutdown_timeout_s = shutdown_grace_s)."""
    from ray import serve

    from browser_llm.cluster.app import build_app

    ids = [r["replica"] for r in cluster.wait_for_replicas(2)]
    # Two prompts that the router prefers on each replica, so both have streams.
    tales = [f"Tale {i}:" for i in range(200)]
    prompts = [p for rid in ids for p in [t for t in tales if preferred_replica(t, ids) == rid][:2]]
    body = {"max_tokens": 80, "ignore_eos": True, "temperature": 0}
    endings: list[str] = []

    def streamed(prompt: str) -> None:
        with httpx.Client(base_url=cluster.base_url, timeout=180) as api:
            events = stream_all(api, {**body, "prompt": prompt})
        endings.append(events[-1]["type"])

    threads = [threading.Thread(target=streamed, args=(p,)) for p in prompts]
    for t in threads:
        t.start()
    wait_for(lambda: all(r["streams"] for r in cluster.replicas()) or None, 60, "streams on both")
    serve.run(build_app({**cluster.args, "replicas": 1}), name="browser-llm", route_prefix="/")
    for t in threads:
        t.join(timeout=300)
    record_figure("F", streams=len(prompts), endings=endings)
    assert endings == ["done"] * 4
    cluster.wait_for_replicas(1)
    resp = cluster.api.post("/api/v1/generate", json={"prompt": "Still here?", "max_tokens": 4})
    assert resp.status_code == 200, resp.text
