"""The prompt cache on disk on the real engine: a long prompt's KV cells, saved by one
server, serve the next server (a restart) without changing any output; a damaged file is
ignored, and the answer is still the uncached one."""

from __future__ import annotations

import concurrent.futures
import os
import signal
import time
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest
from prometheus_client.parser import text_string_to_metric_families

from browser_llm.config import DEFAULT_MODEL_ID
from tests.e2e.conftest import Server, served
from tests.e2e.helpers import generate
from tests.e2e.test_models_real import GEMMA

GREEDY: dict[str, Any] = {"max_tokens": 24, "temperature": 0}
TILE = 64  # a long prompt's last tile is always read again (engine/native/kv/slots.py)
MIN_TOKENS = 256

SYSTEM = (
    "You are a careful assistant for a museum of astronomy. Visitors ask about the Moon. "
    "The Moon is Earth's only natural satellite. It is about a quarter of Earth's diameter, "
    "has no atmosphere to speak of, and its surface is covered in craters, dust and old "
    "lava plains that people once took for seas. "
) * 8


def _prompt(question: str) -> str:
    return f"{SYSTEM}\nAnswer in one sentence: {question}"


Q1 = _prompt("what covers the surface of the Moon?")
Q2 = _prompt("how big is the Moon compared with Earth?")


def _cache_env(cache: Path, **extra: str) -> dict[str, str]:
    return {
        "BROWSER_LLM_PROMPT_CACHE_DIR": str(cache),
        "BROWSER_LLM_PROMPT_CACHE_MIN_TOKENS": str(MIN_TOKENS),
        **extra,
    }


def _ask(srv: Server, prompt: str) -> dict[str, Any]:
    with httpx.Client(base_url=srv.base_url, timeout=300) as api:
        return generate(api, prompt=prompt, **GREEDY)


def _wait_for_files(cache: Path, count: int) -> list[Path]:
    """Files are written by the store's own thread, after the answer."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        files = sorted(cache.glob("*/*.kv"))
        if len(files) >= count:
            return files
        time.sleep(0.1)
    raise AssertionError(f"{count} prompt cache file(s) never appeared in {cache}")


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, Any]]:
    """The answers with every cache off, from the same build."""
    tmp = tmp_path_factory.mktemp("reference")
    with served(tmp, BROWSER_LLM_PREFIX_CACHE="false", BROWSER_LLM_PROMPT_CACHE_GB="0") as srv:
        answers = {"q1": _ask(srv, Q1), "q2": _ask(srv, Q2)}
    assert not (tmp / "prompt-cache").exists()
    return answers


def test_a_restarted_server_loads_a_saved_prompt_and_answers_the_same(
    tmp_path: Path, reference: dict[str, dict[str, Any]]
) -> None:
    cache = tmp_path / "cache"
    with served(tmp_path, **_cache_env(cache)) as srv:
        cold = _ask(srv, Q1)
        (saved,) = _wait_for_files(cache, 1)
    n_prompt = cold["usage"]["prompt_tokens"]
    assert n_prompt >= MIN_TOKENS + 2 * TILE
    assert cold["usage"]["cached_prompt_tokens"] == 0
    assert cold["text"] == reference["q1"]["text"]

    with served(tmp_path, **_cache_env(cache)) as srv:  # a restart: nothing in memory
        warm = _ask(srv, Q1)
        status = srv.status()["engine"]["prompt_cache"]
        metrics = _metrics(srv)
    assert warm["usage"]["cached_prompt_tokens"] == n_prompt - TILE
    assert warm["text"] == reference["q1"]["text"]
    assert status["hits"] == 1 and status["lookups"] == 1 and status["hit_rate"] == 1.0
    assert status["entries"] == 1 and status["bytes"] == saved.stat().st_size
    assert metrics["browser_llm_prompt_cache_hits_total"] == 1
    assert metrics["browser_llm_prompt_cache_lookups_total"] == 1
    assert metrics["browser_llm_prompt_cache_entries"] == 1
    assert metrics["browser_llm_prompt_cache_bytes"] == saved.stat().st_size


def _metrics(srv: Server) -> dict[str, float]:
    """The server's /metrics samples without labels, parsed by prometheus_client."""
    root = srv.base_url.removesuffix("/api/v1")
    text = httpx.get(f"{root}/metrics", headers=srv.headers, timeout=10).text
    return {
        sample.name: sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if not sample.labels
    }


def test_a_prompt_sharing_a_saved_prefix_loads_that_prefix(
    tmp_path: Path, reference: dict[str, dict[str, Any]]
) -> None:
    cache = tmp_path / "cache"
    with served(tmp_path, **_cache_env(cache)) as srv:
        _ask(srv, Q1)
        _wait_for_files(cache, 1)
    with served(tmp_path, **_cache_env(cache)) as srv:
        other = _ask(srv, Q2)
    cached = other["usage"]["cached_prompt_tokens"]
    assert MIN_TOKENS <= cached <= other["usage"]["prompt_tokens"] - TILE
    assert other["text"] == reference["q2"]["text"]


@pytest.mark.parametrize("damage", ["flip", "truncate"])
def test_a_damaged_file_is_ignored_and_the_answer_is_the_uncached_one(
    tmp_path: Path, reference: dict[str, dict[str, Any]], damage: str
) -> None:
    cache = tmp_path / "cache"
    with served(tmp_path, **_cache_env(cache)) as srv:
        _ask(srv, Q1)
        (saved,) = _wait_for_files(cache, 1)
    data = bytearray(saved.read_bytes())
    if damage == "flip":  # one byte in the middle of the KV payload
        data[len(data) * 3 // 4] ^= 0x5A
    else:
        data = data[: len(data) // 2]
    saved.write_bytes(bytes(data))
    with served(tmp_path, **_cache_env(cache)) as srv:
        again = _ask(srv, Q1)
        log = srv.log.read_text()
    assert again["usage"]["cached_prompt_tokens"] == 0
    assert again["text"] == reference["q1"]["text"]
    assert "prompt cache: ignoring" in log


def test_a_prompt_whose_slot_was_taken_comes_back_from_disk(
    tmp_path: Path, reference: dict[str, dict[str, Any]]
) -> None:
    cache = tmp_path / "cache"
    other = "Tell me a short story about a lighthouse keeper and a storm. " * 30
    with served(tmp_path, **_cache_env(cache, BROWSER_LLM_PARALLEL="1")) as srv:
        first = _ask(srv, Q1)
        _wait_for_files(cache, 1)
        evicting = _ask(srv, other)  # takes the only slot: Q1's cells are gone from memory
        again = _ask(srv, Q1)
        status = srv.status()["engine"]["prompt_cache"]
    assert evicting["usage"]["cached_prompt_tokens"] < MIN_TOKENS  # the chat template's start
    assert again["usage"]["cached_prompt_tokens"] == first["usage"]["prompt_tokens"] - TILE
    assert again["text"] == first["text"] == reference["q1"]["text"]
    # Q1 and the story missed, then Q1 was loaded from disk.
    assert (status["lookups"], status["hits"]) == (3, 1)


def test_a_restarted_engine_process_loads_the_saved_prompt(
    tmp_path: Path, reference: dict[str, dict[str, Any]]
) -> None:
    cache = tmp_path / "cache"
    with served(tmp_path, **_cache_env(cache)) as srv:
        first = _ask(srv, Q1)
        _wait_for_files(cache, 1)
        (child,) = psutil.Process(srv.process.pid).children()
        os.kill(child.pid, signal.SIGKILL)  # the engine process this test's server started
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            status = srv.status()
            if status["engine"]["restarts"] >= 1 and status["status"] == "ready":
                break
            time.sleep(0.2)
        else:
            raise AssertionError(f"the engine process did not come back: {status}")
        again = _ask(srv, Q1)
    assert again["usage"]["cached_prompt_tokens"] == first["usage"]["prompt_tokens"] - TILE
    assert again["text"] == first["text"] == reference["q1"]["text"]


def test_a_model_swapped_out_and_back_loads_its_saved_prompt(
    tmp_path: Path, reference: dict[str, dict[str, Any]]
) -> None:
    cache = tmp_path / "cache"
    with (
        served(tmp_path, **_cache_env(cache)) as srv,
        httpx.Client(base_url=srv.base_url, timeout=600) as api,
    ):
        first = generate(api, prompt=Q1, model=DEFAULT_MODEL_ID, **GREEDY)
        _wait_for_files(cache, 1)
        other = generate(api, prompt="Say hello.", model=GEMMA, max_tokens=4)  # a swap
        assert other["model"] == GEMMA
        again = generate(api, prompt=Q1, model=DEFAULT_MODEL_ID, **GREEDY)  # and back
    assert again["usage"]["cached_prompt_tokens"] == first["usage"]["prompt_tokens"] - TILE
    assert again["text"] == first["text"] == reference["q1"]["text"]


_FIRMS = [
    ("Harbor Lane Bakery", "sourdough bread", "Portsmouth"),
    ("Northwind Cycles", "touring bicycles", "Leeds"),
    ("Blue Fern Textiles", "wool blankets", "Dundee"),
    ("Copperline Robotics", "warehouse robots", "Eindhoven"),
    ("Silver Birch Press", "poetry books", "Galway"),
    ("Redstone Ceramics", "glazed tiles", "Stoke"),
    ("Tidewater Instruments", "sailing compasses", "Bergen"),
    ("Juniper Orchards", "cider apples", "Hereford"),
]


def _firm_prompt(name: str, product: str, city: str) -> str:
    passage = (
        f"{name} is a small company in {city}. Every morning its workers open the doors "
        f"at seven and start making {product} by hand, as the founder taught them. "
        f"Visitors to {city} often stop at the workshop to watch, and the staff of {name} "
        f"explain each step of the work and answer questions about {product}. "
    ) * 5  # over MIN_TOKENS + TILE tokens: saved
    return f"{passage}\nQuestion: what does {name} make? Answer in one sentence."


def test_prompts_loaded_from_disk_beside_each_other_keep_their_own_cells(
    tmp_path: Path,
) -> None:
    """Eight saved prompts asked at once: their loads, slot copies and slot moves happen
    in the same steps, and every answer is the one a server without caches gives."""
    prompts = [_firm_prompt(*firm) for firm in _FIRMS]
    off = {"BROWSER_LLM_PREFIX_CACHE": "false", "BROWSER_LLM_PROMPT_CACHE_GB": "0"}
    for folder in ("plain", "cached"):
        (tmp_path / folder).mkdir()
    with served(tmp_path / "plain", **off) as srv:
        answers = [_ask(srv, p) for p in prompts]
    assert min(a["usage"]["prompt_tokens"] for a in answers) >= MIN_TOKENS + TILE
    truth = [a["text"] for a in answers]
    cache = tmp_path / "cache"
    with served(tmp_path / "cached", **_cache_env(cache)) as srv:
        assert [_ask(srv, p)["text"] for p in prompts] == truth  # each saved here
        _wait_for_files(cache, len(prompts))
        for _ in range(2):
            with concurrent.futures.ThreadPoolExecutor(len(prompts)) as pool:
                together = list(pool.map(lambda p: _ask(srv, p)["text"], prompts))
            assert together == truth
        assert _metrics(srv)["browser_llm_prompt_cache_hits_total"] > 0
