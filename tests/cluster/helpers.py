"""Small helpers of the cluster tier: SSE reading, replica lookups, killing by pid."""

from __future__ import annotations

import contextlib
import functools
import json
import os
import signal
import time
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import httpx

from browser_llm.cluster.prefix_choice import prefix_digest, prefix_key, rendezvous_order
from browser_llm.engine.base import GenerationRequest
from browser_llm.engine.chat_template import ChatTemplate
from browser_llm.engine.prompt import prompt_text
from browser_llm.models.gguf_info import read_gguf_header
from tests.modelfiles import smollm2_path

T = TypeVar("T")


def sse_events(lines: Iterator[str]) -> Iterator[dict[str, Any]]:
    for line in lines:
        if line.startswith("data: "):
            yield json.loads(line[6:])


def stream_all(api: httpx.Client, body: dict[str, Any]) -> list[dict[str, Any]]:
    with api.stream("POST", "/api/v1/generate", json={**body, "stream": True}) as resp:
        assert resp.status_code == 200, resp.read()
        return list(sse_events(resp.iter_lines()))


@functools.cache
def _template() -> ChatTemplate:
    header = read_gguf_header(smollm2_path())
    assert header.chat_template
    return ChatTemplate(header.chat_template, header.bos_text, header.eos_text)


def routing_key(prompt: str) -> str:
    """The router's key for a plain prompt: its start as the model's template renders it
    (the ingress renders it the same way)."""
    rendered = prompt_text(_template(), GenerationRequest(prompt=prompt))[0]
    return prefix_key({"prompt": prompt, "messages": None}, rendered=rendered)


def preferred_replica(prompt: str, replica_ids: list[str]) -> str:
    """The replica the router prefers for this prompt while it has free slots."""
    return rendezvous_order(routing_key(prompt), replica_ids)[0]


def digest_of(prompt: str) -> str:
    return prefix_digest(routing_key(prompt))


def wait_for(check: Callable[[], T | None], timeout_s: float = 60, what: str = "") -> T:
    """Polls `check` until it returns something; never a timing assertion, only a bound."""
    deadline = time.monotonic() + timeout_s
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what or check}")
        time.sleep(0.2)


def kill(pid: int | None, sig: int = signal.SIGKILL) -> None:
    if pid:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, sig)


def record_figure(test: str, **values: Any) -> None:
    """Appends what a test measured to $BROWSER_LLM_CLUSTER_FIGURES (JSON lines), when set:
    the issue's A-F figures come from the same runs that check them (bench/README.md)."""
    path = os.environ.get("BROWSER_LLM_CLUSTER_FIGURES")
    if path:
        with open(path, "a", encoding="utf-8") as out:
            out.write(json.dumps({"test": test, "at": time.time(), **values}) + "\n")
