"""Log-probabilities from the real engine and model (issue 20 item 5).

The reference is independent of the server's code: llama-cpp-python's own `Llama`
runs the same prompt tokens with the same build and the same flash-attention setting
(it moves logits by up to ~0.7 here, so both sides name it), and the test takes a
float64 log-softmax of its logits. Nothing here hard-codes a model output.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from typing import Any

import httpx
import numpy as np
import openai
import pytest
from llama_cpp import Llama

from browser_llm.config import DEFAULT_MODEL_ID as MODEL
from tests.e2e.conftest import Server, served
from tests.modelfiles import smollm2_path

TOLERANCE = 1e-3
PROMPT = "The three primary colours are"
MESSAGES = [{"role": "user", "content": "Name three fruits."}]


@pytest.fixture(scope="module", params=["on", "off"])
def flash(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture(scope="module")
def flash_server(tmp_path_factory: pytest.TempPathFactory, flash: str) -> Iterator[Server]:
    with served(tmp_path_factory.mktemp(f"flash-{flash}"), BROWSER_LLM_FLASH_ATTN=flash) as srv:
        yield srv


@pytest.fixture(scope="module")
def reference(flash: str) -> Iterator[Llama]:
    llm = Llama(
        str(smollm2_path()),
        n_ctx=512,
        n_threads=2,
        logits_all=True,
        flash_attn=flash == "on",
        verbose=False,
    )
    try:
        yield llm
    finally:
        llm.close()


@pytest.fixture
def root(server: Server) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.base_url.replace("/api/v1", ""), timeout=120) as client:
        yield client


@pytest.fixture
def oai(server: Server) -> Iterator[openai.OpenAI]:
    base = server.base_url.replace("/api/v1", "/v1")
    with openai.OpenAI(base_url=base, api_key="unused", max_retries=0) as client:
        yield client


def _log_softmax(logits: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
    row = logits.astype(np.float64)
    peak = row.max()
    return row - (peak + math.log(np.exp(row - peak).sum()))  # type: ignore[no-any-return]


def _piece(llm: Llama, token: int) -> bytes:
    return llm.detokenize([token], special=True)


def test_logprobs_equal_a_float64_softmax_of_llama_cpp_logits(
    flash_server: Server, reference: Llama
) -> None:
    """Greedy raw prompt with 20 alternatives: every chosen logprob and every top list
    matches the reference position by position, within 1e-3."""
    body = {
        "model": MODEL,
        "prompt": PROMPT,
        "raw": True,
        "stream": False,
        "logprobs": True,
        "top_logprobs": 20,
        "options": {"temperature": 0, "num_predict": 16},
    }
    url = flash_server.base_url.replace("/api/v1", "/api/generate")
    resp = httpx.post(url, json=body, timeout=120)
    assert resp.status_code == 200, resp.text
    answer = resp.json()
    entries = answer["logprobs"]
    assert len(entries) == answer["eval_count"] > 0

    tokens = reference.tokenize(PROMPT.encode(), add_bos=True, special=True)
    assert len(tokens) == answer["prompt_eval_count"]
    reference.reset()
    reference.eval(tokens)
    for i, entry in enumerate(entries):
        expected = _log_softmax(reference.scores[reference.n_tokens - 1])
        best = int(expected.argmax())
        # Greedy: the sampled token is the reference's argmax, and the first alternative.
        assert bytes(entry["bytes"]) == _piece(reference, best), i
        assert abs(entry["logprob"] - expected[best]) < TOLERANCE, i
        top = entry["top_logprobs"]
        assert len(top) == 20
        assert top[0]["bytes"] == entry["bytes"] and top[0]["logprob"] == entry["logprob"]
        ranked = np.argsort(-expected, kind="stable")[:20]
        got = [t["logprob"] for t in top]
        assert np.allclose(got, expected[ranked], atol=TOLERANCE), i
        assert got == sorted(got, reverse=True)
        for alt in top:  # each alternative is that token's own logprob (ties may reorder)
            ids = [int(t) for t in ranked if _piece(reference, int(t)) == bytes(alt["bytes"])]
            assert any(abs(expected[t] - alt["logprob"]) < TOLERANCE for t in ids), (i, alt)
        assert sum(math.exp(t["logprob"]) for t in top) <= 1 + 1e-6
        reference.eval([best])
    assert "".join(e["token"] for e in entries) == answer["response"]


def test_openai_package_reads_chat_logprobs_streamed_and_not(oai: openai.OpenAI) -> None:
    kwargs: dict[str, Any] = {
        "model": MODEL,
        "messages": MESSAGES,
        "max_tokens": 24,
        "temperature": 0,
        "logprobs": True,
        "top_logprobs": 5,
    }
    whole = oai.chat.completions.create(**kwargs)
    choice = whole.choices[0]
    assert choice.logprobs is not None and choice.logprobs.content
    content = choice.logprobs.content
    assert len(content) == whole.usage.completion_tokens  # type: ignore[union-attr]
    assert "".join(t.token for t in content) == choice.message.content
    for t in content:
        assert t.bytes is not None and bytes(t.bytes).decode() == t.token
        assert len(t.top_logprobs) == 5
        assert t.top_logprobs[0].token == t.token  # greedy: the pick is the most likely
        assert t.logprob == t.top_logprobs[0].logprob <= 0
        assert sum(math.exp(a.logprob) for a in t.top_logprobs) <= 1 + 1e-6

    streamed, text = [], []
    for chunk in oai.chat.completions.create(**kwargs, stream=True):
        for c in chunk.choices:
            text.append(c.delta.content or "")
            if c.logprobs is not None and c.logprobs.content:
                streamed.extend(c.logprobs.content)
    assert "".join(text) == choice.message.content
    assert [(t.token, t.bytes) for t in streamed] == [(t.token, t.bytes) for t in content]
    for a, b in zip(streamed, content, strict=True):
        assert a.logprob == pytest.approx(b.logprob, abs=1e-6)
        assert [x.token for x in a.top_logprobs] == [x.token for x in b.top_logprobs]


def test_legacy_completions_logprobs(oai: openai.OpenAI) -> None:
    resp = oai.completions.create(
        model=MODEL, prompt=PROMPT, max_tokens=8, temperature=0, logprobs=3
    )
    choice = resp.choices[0]
    lp = choice.logprobs
    assert lp is not None and lp.tokens and lp.token_logprobs and lp.top_logprobs
    assert lp.text_offset is not None
    assert "".join(lp.tokens) == choice.text
    assert len(lp.tokens) == len(lp.token_logprobs) == len(lp.top_logprobs) == 8
    offset = len(PROMPT)
    for token, value, top, start in zip(
        lp.tokens, lp.token_logprobs, lp.top_logprobs, lp.text_offset, strict=True
    ):
        assert start == offset  # characters from the prompt's start
        offset += len(token)
        assert top[token] == value == max(top.values())
        assert len(top) <= 4


def test_without_logprobs_nothing_is_reported(oai: openai.OpenAI) -> None:
    resp = oai.chat.completions.create(model=MODEL, messages=MESSAGES, max_tokens=4)  # type: ignore[arg-type]
    assert resp.choices[0].logprobs is None


def test_logprobs_zero_alternatives_and_json_mode(root: httpx.Client) -> None:
    """top_logprobs 0 gives the chosen token only; JSON-constrained tokens are scored from
    the same (unconstrained) distribution, and an early JSON closing's later tokens,
    which the model never read, have null logprobs."""
    body = {
        "messages": [{"role": "user", "content": "Give me a JSON object about a cat."}],
        "max_tokens": 6,
        "temperature": 0,
        "logprobs": True,
        "response_format": {"type": "json_object"},
    }
    answer = root.post("/v1/chat/completions", json=body).json()
    choice = answer["choices"][0]
    content = choice["logprobs"]["content"]
    assert "".join(t["token"] for t in content) == choice["message"]["content"]
    json.loads(choice["message"]["content"])  # closed early, still complete JSON
    assert all(t["top_logprobs"] == [] for t in content)
    scored = [t["logprob"] for t in content if t["logprob"] is not None]
    assert scored and all(v <= 0 for v in scored)
    assert content[0]["logprob"] is not None


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("/v1/chat/completions", {"top_logprobs": 3}, "top_logprobs"),
        ("/v1/chat/completions", {"logprobs": True, "top_logprobs": 21}, "top_logprobs"),
        ("/v1/chat/completions", {"logprobs": True, "top_logprobs": -1}, "top_logprobs"),
        ("/v1/completions", {"logprobs": 6}, "logprobs"),
    ],
)
def test_bad_values_are_openai_400s(
    root: httpx.Client, path: str, body: dict[str, Any], field: str
) -> None:
    prompt = {"prompt": PROMPT} if path == "/v1/completions" else {"messages": MESSAGES}
    resp = root.post(path, json={**prompt, **body, "max_tokens": 2})
    assert resp.status_code == 400, resp.text
    error = resp.json()["error"]
    assert error["type"] == "invalid_request_error" and error["param"] == field
