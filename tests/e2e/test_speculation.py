"""Speculative decoding on the real engine: with drafts looked up in the prompt and
verified in the batch, the output is the one the same build gives without speculation,
token for token (greedy, and seeded sampling too: each row is sampled once, in order,
with the request's own sampler chain), alone and among other streams, with logprobs,
stop strings, max_tokens and cancellation; and the counters show drafts accepted."""

from __future__ import annotations

import concurrent.futures
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.e2e.conftest import Server, served
from tests.e2e.helpers import generate

PASSAGE = (
    "The old lighthouse on Gull Point was built in 1871 from granite quarried on the "
    "island itself. Its keeper, Martha Hale, kept the lamp burning for thirty-one years, "
    "climbing one hundred and twelve steps each evening. In the great storm of 1903 she "
    "rowed out alone to rescue the crew of the schooner Mary Ellen, and all nine sailors "
    "survived. The light was automated in 1962, and the keeper's house is now a museum."
)

CODE = """def parse_line(line):
    parts = line.strip().split(",")
    name = parts[0]
    age = int(parts[1])
    city = parts[2]
    return {"name": name, "age": age, "city": city}


def parse_file(path):
    rows = []
    with open(path) as handle:
        for line in handle:
            if line.strip():
                rows.append(parse_line(line))
    return rows
"""

PROMPTS = [
    f"{PASSAGE}\n\nRepeat the text above word for word.",
    f"{PASSAGE}\n\nSummarise the text above in two sentences.",
    f"{PASSAGE}\n\nWho rescued the crew of the Mary Ellen? Quote the sentence that says so.",
    f"{PASSAGE}\n\nExtract as JSON: the year built, the keeper's name, the sailors saved.",
    f"Here is a Python module:\n\n{CODE}\nRewrite it with type hints added.",
    f"{CODE}\nCopy the code above exactly, then explain what it does.",
]

GREEDY: dict[str, Any] = {"max_tokens": 96, "temperature": 0}

# Past 256 KV cells: where an unpatched llama.cpp would round a lone row differently.
LONG_PROMPTS = [
    f"{PASSAGE}\n\n{CODE}\n{PASSAGE}\n\nCopy the code above exactly.",
    f"{CODE}\n{PASSAGE}\n\n{CODE}\nSummarise the text, then quote its last sentence.",
]


def _server(tmp: Any, speculation: str) -> Iterator[httpx.Client]:
    with (
        served(
            tmp,
            BROWSER_LLM_SPECULATION=speculation,
            BROWSER_LLM_PARALLEL="4",
            BROWSER_LLM_CONTEXT_SIZE="1024",
        ) as srv,
        httpx.Client(base_url=srv.base_url, timeout=180) as client,
    ):
        client.server = srv  # type: ignore[attr-defined]
        yield client


@pytest.fixture(scope="module")
def spec_on(tmp_path_factory: pytest.TempPathFactory) -> Iterator[httpx.Client]:
    yield from _server(tmp_path_factory.mktemp("spec-on"), "true")


@pytest.fixture(scope="module")
def spec_off(tmp_path_factory: pytest.TempPathFactory) -> Iterator[httpx.Client]:
    yield from _server(tmp_path_factory.mktemp("spec-off"), "false")


def _srv(client: httpx.Client) -> Server:
    srv: Server = client.server  # type: ignore[attr-defined]
    return srv


def _both(on: httpx.Client, off: httpx.Client, **body: Any) -> tuple[dict[str, Any], ...]:
    return generate(on, **body), generate(off, **body)


def _same(a: dict[str, Any], b: dict[str, Any]) -> None:
    assert (a["text"], a["tokens"], a["finish_reason"]) == (
        b["text"],
        b["tokens"],
        b["finish_reason"],
    )


def test_greedy_output_is_the_same_with_and_without_speculation(
    spec_on: httpx.Client, spec_off: httpx.Client
) -> None:
    for prompt in PROMPTS:
        on, off = _both(spec_on, spec_off, prompt=prompt, **GREEDY)
        _same(on, off)
    speculation = _srv(spec_on).status()["engine"]["speculation"]
    assert speculation["draft_tokens"] > 0
    assert 0 < speculation["accepted"] <= speculation["draft_tokens"]
    assert speculation["acceptance_rate"] == pytest.approx(
        speculation["accepted"] / speculation["draft_tokens"]
    )
    assert _srv(spec_off).status()["engine"]["speculation"]["draft_tokens"] == 0
    metrics = httpx.get(_srv(spec_on).base_url.replace("/api/v1", "/metrics")).text
    assert "browser_llm_speculation_draft_tokens_total" in metrics
    assert "browser_llm_speculation_accepted_tokens_total" in metrics


def test_greedy_output_is_the_same_past_256_cells_and_drafts_are_verified_there(
    spec_on: httpx.Client, spec_off: httpx.Client
) -> None:
    def drafted() -> int:
        return int(_srv(spec_on).status()["engine"]["speculation"]["draft_tokens"])

    before = drafted()
    for prompt in LONG_PROMPTS:
        on, off = _both(spec_on, spec_off, prompt=prompt, max_tokens=160, temperature=0)
        assert on["usage"]["prompt_tokens"] > 256
        _same(on, off)
    assert drafted() > before


def test_greedy_output_is_the_same_among_several_streams(
    spec_on: httpx.Client, spec_off: httpx.Client
) -> None:
    def run(client: httpx.Client) -> list[dict[str, Any]]:
        with concurrent.futures.ThreadPoolExecutor(4) as pool:
            return list(pool.map(lambda p: generate(client, prompt=p, **GREEDY), PROMPTS))

    for on, off in zip(run(spec_on), run(spec_off), strict=True):
        _same(on, off)


def test_seeded_sampling_and_penalties_give_the_same_output(
    spec_on: httpx.Client, spec_off: httpx.Client
) -> None:
    """Each row is sampled once, in order, by the request's chain: the random draws and
    the penalties' history are those of decoding without drafts."""
    body = {"max_tokens": 64, "temperature": 0.7, "seed": 11, "frequency_penalty": 0.3}
    for prompt in PROMPTS[:3]:
        on, off = _both(spec_on, spec_off, prompt=prompt, **body)
        _same(on, off)


def _completion_logprobs(client: httpx.Client, prompt: str) -> dict[str, Any]:
    url = _srv(client).base_url.replace("/api/v1", "/v1/completions")
    body = {"prompt": prompt, "max_tokens": 48, "temperature": 0, "logprobs": 3}
    resp = httpx.post(url, json=body, timeout=180)
    assert resp.status_code == 200, resp.text
    choice: dict[str, Any] = resp.json()["choices"][0]
    return choice


def test_logprobs_are_the_same(spec_on: httpx.Client, spec_off: httpx.Client) -> None:
    prompt = f"{PASSAGE}\n\nThe text above, repeated exactly:\n\n"
    on, off = _completion_logprobs(spec_on, prompt), _completion_logprobs(spec_off, prompt)
    assert on["text"] == off["text"]
    assert on["logprobs"] == off["logprobs"]


def test_stop_strings_and_max_tokens_end_where_they_would(
    spec_on: httpx.Client, spec_off: httpx.Client
) -> None:
    prompt = PROMPTS[0]
    full = generate(spec_off, prompt=prompt, **GREEDY)["text"]
    words = full.split()
    assert len(words) > 8
    stop = " ".join(words[5:7])  # a stop string in the middle of a repeated span
    on, off = _both(spec_on, spec_off, prompt=prompt, stop=[stop], **GREEDY)
    _same(on, off)
    assert on["finish_reason"] == "stop" and stop not in on["text"]
    for max_tokens in (1, 2, 5, 13):
        on, off = _both(spec_on, spec_off, prompt=prompt, max_tokens=max_tokens, temperature=0)
        _same(on, off)
        assert on["tokens"] == max_tokens


def test_a_cancelled_stream_leaves_the_next_answer_unchanged(
    spec_on: httpx.Client, spec_off: httpx.Client
) -> None:
    body = {"prompt": PROMPTS[5], "max_tokens": 400, "temperature": 0, "stream": True}
    with spec_on.stream("POST", "/generate", json=body) as resp:
        received = 0
        for line in resp.iter_lines():
            received += line.startswith("data: ")
            if received >= 5:
                break
    deadline = time.monotonic() + 10
    while _srv(spec_on).status()["engine"]["running"] and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _srv(spec_on).status()["engine"]["running"] == 0
    on, off = _both(spec_on, spec_off, prompt=PROMPTS[5], **GREEDY)
    _same(on, off)
