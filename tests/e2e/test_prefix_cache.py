"""Prefix reuse and long prompts on the real engine: a slot's KV cells serve the next
request's shared prefix, and neither reuse nor batching changes any output."""

from __future__ import annotations

import concurrent.futures
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.e2e.conftest import served
from tests.e2e.helpers import generate

GREEDY: dict[str, Any] = {"max_tokens": 24, "temperature": 0}
TILE = 64  # the engine's _TILE_ROWS: a long prompt's last chunk is read again

FACTS = (
    "The Moon is Earth's only natural satellite. It is about a quarter of Earth's "
    "diameter, has no atmosphere to speak of, and its surface is covered in craters, "
    "dust and old lava plains that people once took for seas. "
)


def long_prompt(topic: str) -> str:
    return f"{FACTS * 2}Using the text above, answer in one sentence: {topic}"


@pytest.fixture(scope="module")
def uncached(tmp_path_factory: pytest.TempPathFactory) -> Iterator[httpx.Client]:
    """Prefix reuse off, four slots, 128-token prompt chunks while others decode."""
    with (
        served(
            tmp_path_factory.mktemp("uncached"),
            BROWSER_LLM_PREFIX_CACHE="false",
            BROWSER_LLM_PARALLEL="4",
            BROWSER_LLM_CONTEXT_SIZE="1024",
        ) as srv,
        httpx.Client(base_url=srv.base_url, timeout=120) as client,
    ):
        yield client


def _chat(api: httpx.Client, messages: list[dict[str, str]]) -> dict[str, Any]:
    """A greedy chat turn through the OpenAI-compatible route (it takes a message list)."""
    base = str(api.base_url).rstrip("/").replace("/api/v1", "/v1")
    body = {"messages": messages, **GREEDY}
    resp = httpx.post(f"{base}/chat/completions", json=body, timeout=120)
    assert resp.status_code == 200, resp.text
    data: dict[str, Any] = resp.json()
    return data


def test_a_repeated_long_prompt_reuses_all_but_its_last_tile(
    api: httpx.Client, uncached: httpx.Client
) -> None:
    prompt = long_prompt("what covers the surface of the Moon?")
    first = generate(api, prompt=prompt, **GREEDY)
    again = generate(api, prompt=prompt, **GREEDY)
    prompt_tokens = first["usage"]["prompt_tokens"]
    assert prompt_tokens > 2 * TILE
    assert again["usage"]["cached_prompt_tokens"] == prompt_tokens - TILE
    fresh = generate(uncached, prompt=prompt, **GREEDY)
    assert fresh["usage"]["cached_prompt_tokens"] == 0
    assert again["text"] == first["text"] == fresh["text"]


def test_a_short_prompt_reuses_all_but_its_last_token(api: httpx.Client) -> None:
    first = generate(api, prompt="Name a colour.", **GREEDY)
    again = generate(api, prompt="Name a colour.", **GREEDY)
    assert first["usage"]["prompt_tokens"] < TILE
    assert again["usage"]["cached_prompt_tokens"] == first["usage"]["prompt_tokens"] - 1
    assert again["text"] == first["text"]


def test_a_chat_turn_reuses_the_previous_prompt(api: httpx.Client, uncached: httpx.Client) -> None:
    turn1 = [{"role": "user", "content": long_prompt("how big is the Moon?")}]
    first = _chat(api, turn1)
    turn2 = [
        *turn1,
        {"role": "assistant", "content": first["choices"][0]["message"]["content"]},
        {"role": "user", "content": "And how far away is it?"},
    ]
    second = _chat(api, turn2)
    reused = second["usage"]["prompt_tokens_details"]["cached_tokens"]
    turn1_tokens, turn2_tokens = first["usage"]["prompt_tokens"], second["usage"]["prompt_tokens"]
    assert reused == min(turn1_tokens, turn2_tokens - TILE) > 0
    fresh = _chat(uncached, turn2)
    assert fresh["usage"]["prompt_tokens_details"]["cached_tokens"] == 0
    assert second["choices"][0]["message"] == fresh["choices"][0]["message"]


def test_long_prompts_give_the_same_text_alone_or_read_in_chunks_among_others(
    uncached: httpx.Client,
) -> None:
    """Prompts over 128 tokens are read in chunks while the others decode."""
    topics = ["what is the Moon?", "does it have air?", "what are its seas?", "how wide?"]
    prompts = [long_prompt(t) for t in topics]
    alone = [generate(uncached, prompt=p, **GREEDY)["text"] for p in prompts]
    with concurrent.futures.ThreadPoolExecutor(len(prompts)) as pool:
        together = list(pool.map(lambda p: generate(uncached, prompt=p, **GREEDY)["text"], prompts))
    assert together == alone
