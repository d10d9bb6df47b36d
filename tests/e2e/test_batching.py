"""Continuous batching on the real engine: same output, bounded queue, cancellation."""

from __future__ import annotations

import concurrent.futures
import time
from typing import Any

import httpx
import pytest

from tests.e2e.conftest import Server
from tests.e2e.helpers import generate

MODEL = "smollm2-135m-instruct-q4"

PROMPTS = [
    "Name three colours.",
    "What is the capital of Italy?",
    "Write one sentence about cats.",
    "Give me a number between one and ten.",
    "What do bees make?",
    "Say hello in French.",
    "Name a planet.",
    "What is two plus two?",
]


def test_greedy_output_is_the_same_alone_or_among_seven_others(
    api: httpx.Client, server: Server
) -> None:
    assert server.status()["engine"]["parallel"] >= 8
    body = {"max_tokens": 48, "temperature": 0}
    alone = [generate(api, prompt=p, **body)["text"] for p in PROMPTS]
    with concurrent.futures.ThreadPoolExecutor(len(PROMPTS)) as pool:
        together = list(pool.map(lambda p: generate(api, prompt=p, **body)["text"], PROMPTS))
    assert together == alone


LONG_PROMPT = (
    " ".join(
        f"Day {day}: the ferry left the harbour at {day % 12 + 1} o'clock with {day * 7} "
        "passengers, and the captain wrote the weather in the log."
        for day in range(1, 21)
    )
    + "\nSummarise the log above."
)


def test_a_long_sequence_rounds_the_same_alone_or_beside_others(
    api: httpx.Client, server: Server
) -> None:
    """Past 256 KV cells, a sequence decoding alone goes through the attention kernel
    that llama.cpp would split among the threads (patched out by the Makefile's build):
    its tokens and log-probabilities must equal those it gets beside seven others."""
    url = server.base_url.replace("/api/v1", "/v1/chat/completions")
    messages = [{"role": "user", "content": LONG_PROMPT}]
    body = {"model": MODEL, "messages": messages, "max_tokens": 96, "temperature": 0}
    body |= {"logprobs": True}

    def complete() -> dict[str, Any]:
        resp = httpx.post(url, json=body, timeout=300)
        assert resp.status_code == 200, resp.text
        answer: dict[str, Any] = resp.json()
        return answer

    alone = complete()
    assert alone["usage"]["prompt_tokens"] > 256
    assert alone["usage"]["completion_tokens"] > 32
    others = {"max_tokens": 200, "temperature": 0, "ignore_eos": True}
    with concurrent.futures.ThreadPoolExecutor(len(PROMPTS)) as pool:
        busy = [pool.submit(generate, api, prompt=p, **others) for p in PROMPTS[:7]]
        beside = complete()
        for future in busy:
            future.result()
    assert beside["choices"][0]["logprobs"] == alone["choices"][0]["logprobs"]


def test_sequences_really_run_together(server: Server) -> None:
    """While eight long generations run, the engine reports them all running at once."""
    body = {"max_tokens": 200, "temperature": 0, "ignore_eos": True}
    seen_running = 0
    with (
        concurrent.futures.ThreadPoolExecutor(8) as pool,
        httpx.Client(base_url=server.base_url, timeout=120) as client,
    ):
        futures = [pool.submit(generate, client, prompt=p, **body) for p in PROMPTS]
        while not all(f.done() for f in futures):
            seen_running = max(seen_running, server.status()["engine"]["running"])
            time.sleep(0.05)
        results = [f.result() for f in futures]
    assert all(r["tokens"] == 200 for r in results)
    assert seen_running == 8


def _wait_until(predicate: object, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():  # type: ignore[operator]
            return
        time.sleep(0.05)
    pytest.fail("condition not reached")


def test_full_queue_answers_503_overloaded(tiny_server: Server) -> None:
    long = {"prompt": "Count", "max_tokens": 600, "ignore_eos": True, "raw": True}
    with (
        concurrent.futures.ThreadPoolExecutor(2) as pool,
        httpx.Client(base_url=tiny_server.base_url, timeout=120) as client,
    ):
        running = pool.submit(client.post, "/generate", json=long)
        _wait_until(lambda: tiny_server.status()["engine"]["running"] == 1)
        queued = pool.submit(client.post, "/generate", json={**long, "max_tokens": 5})
        _wait_until(lambda: tiny_server.status()["engine"]["queued"] == 1)
        rejected = client.post("/generate", json=long)
        assert rejected.status_code == 503, (rejected.text, tiny_server.status()["engine"])
        assert rejected.json()["error"]["code"] == "OVERLOADED"
        assert int(rejected.headers["Retry-After"]) >= 1
        assert running.result().status_code == 200
        assert queued.result().status_code == 200
    status = tiny_server.status()["engine"]
    assert status["requests_rejected"] == 1
    assert status["max_queue_wait_ms"] > 0


def test_cancel_during_prefill_stops_the_prompt(tiny_server: Server) -> None:
    """A long prompt abandoned while it is being read never produces a token."""
    before = tiny_server.status()["engine"]["tokens_generated_total"]
    prompt = "The quick brown fox jumps over the lazy dog. " * 90  # ~900 of 1024 tokens
    with pytest.raises(httpx.ReadTimeout):
        httpx.post(
            f"{tiny_server.base_url}/generate",
            json={"prompt": prompt, "raw": True, "max_tokens": 20},
            timeout=0.3,
        )
    _wait_until(lambda: tiny_server.status()["engine"]["running"] == 0, timeout=10)
    status = tiny_server.status()["engine"]
    assert status["tokens_generated_total"] == before
    assert status["requests_cancelled"] >= 1
