"""Slot placement on the real engine: running sequences are kept in adjacent slots
(llama.cpp batches only consecutive sequence ids in one pass), by closing holes and by
copying a reusable prefix into the adjacent slot, without changing any output."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.e2e.conftest import Server, served
from tests.e2e.helpers import generate
from tests.e2e.test_prefix_cache import GREEDY, TILE, long_prompt

LONG_RUN: dict[str, Any] = {"max_tokens": 120, "temperature": 0, "ignore_eos": True}


@pytest.fixture
def fresh(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """A server of its own per test: slot placement depends on what ran before."""
    with served(
        tmp_path_factory.mktemp("slots"),
        BROWSER_LLM_PARALLEL="4",
        BROWSER_LLM_CONTEXT_SIZE="1024",
    ) as srv:
        yield srv


class Stream(threading.Thread):
    """A streamed generation in the background; `started` is set at its first token."""

    def __init__(self, server: Server, **body: Any) -> None:
        super().__init__(daemon=True)
        self.server, self.body = server, {**body, "stream": True}
        self.started, self.stop = threading.Event(), threading.Event()
        self.text = ""
        self.done: dict[str, Any] | None = None

    def run(self) -> None:
        with (
            httpx.Client(base_url=self.server.base_url, timeout=120) as client,
            client.stream("POST", "/generate", json=self.body) as resp,
        ):
            for line in resp.iter_lines():
                if not line.startswith("data: "):
                    continue
                event = json.loads(line[6:])
                if event["type"] == "token":
                    self.text += event["data"]["token"]
                    self.started.set()
                elif event["type"] == "done":
                    self.done = event
                if self.stop.is_set():
                    return  # closing the stream cancels the generation

    def begin(self) -> Stream:
        self.start()
        assert self.started.wait(60), "no first token"
        return self


def _wait_for_running(server: Server, count: int) -> None:
    deadline = time.monotonic() + 60
    while server.status()["engine"]["running"] != count:
        assert time.monotonic() < deadline, "engine did not reach the running count"
        time.sleep(0.02)


def test_a_finished_sequence_leaves_no_hole_and_no_output_changes(fresh: Server) -> None:
    # Slots 0, 1, 2 in arrival order; 1 ends first, so 2 moves down into 1.
    first = Stream(fresh, prompt="Write about the sea.", **LONG_RUN).begin()
    short = Stream(fresh, prompt="Name a fruit.", max_tokens=16, temperature=0).begin()
    third = Stream(fresh, prompt="Write about mountains.", **LONG_RUN).begin()
    for stream in (first, short, third):
        stream.join(120)
    assert fresh.status()["engine"]["slot_moves"] >= 1
    with httpx.Client(base_url=fresh.base_url, timeout=120) as api:
        alone = [generate(api, prompt=s.body["prompt"], **LONG_RUN)["text"] for s in (first, third)]
    assert [first.text, third.text] == alone


def test_a_long_prefix_is_copied_next_to_the_running_sequence(fresh: Server) -> None:
    prompt = long_prompt("what covers the surface of the Moon?")
    with httpx.Client(base_url=fresh.base_url, timeout=120) as api:
        cold = generate(api, prompt=prompt, **GREEDY)  # its cells stay in slot 0
        # Slots 1 and 2 busy, then 1 cancelled: slot 0 is not next to slot 2.
        cancelled = Stream(fresh, prompt="Write about the sea.", **LONG_RUN).begin()
        running = Stream(fresh, prompt="Write about mountains.", **LONG_RUN).begin()
        cancelled.stop.set()
        _wait_for_running(fresh, 1)
        moves = fresh.status()["engine"]["slot_moves"]
        warm = generate(api, prompt=prompt, **GREEDY)
        assert fresh.status()["engine"]["slot_moves"] == moves + 1
        running.stop.set()
    assert warm["usage"]["cached_prompt_tokens"] == cold["usage"]["prompt_tokens"] - TILE
    assert warm["text"] == cold["text"]
