"""The OpenAI-compatible API, driven by the official openai package against a real server."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import openai
import pytest

from browser_llm.config import DEFAULT_MODEL_ID as MODEL
from tests.e2e.conftest import Server


@pytest.fixture
def oai(server: Server) -> Iterator[openai.OpenAI]:
    base = server.base_url.replace("/api/v1", "/v1")
    with openai.OpenAI(base_url=base, api_key="unused", max_retries=0) as client:
        yield client


MESSAGES = [
    {"role": "system", "content": "You are a terse assistant."},
    {"role": "user", "content": "What is the capital of France?"},
]


def test_chat(oai: openai.OpenAI) -> None:
    resp = oai.chat.completions.create(
        model=MODEL,
        messages=MESSAGES,
        max_tokens=30,
        temperature=0,  # type: ignore[arg-type]
    )
    choice = resp.choices[0]
    assert choice.message.role == "assistant" and "Paris" in (choice.message.content or "")
    assert choice.finish_reason in ("stop", "length")
    assert resp.usage is not None and resp.usage.completion_tokens > 0
    assert resp.model == "smollm2-135m-instruct-q4"


def test_streaming_chat_matches_and_reports_usage(oai: openai.OpenAI) -> None:
    kwargs = {"model": MODEL, "messages": MESSAGES, "max_tokens": 30, "temperature": 0}
    whole = oai.chat.completions.create(**kwargs)  # type: ignore[call-overload]
    pieces, usage, finish = [], None, None
    for chunk in oai.chat.completions.create(
        **kwargs, stream=True, stream_options={"include_usage": True}
    ):
        if chunk.usage is not None:
            usage = chunk.usage
        for choice in chunk.choices:
            pieces.append(choice.delta.content or "")
            finish = choice.finish_reason or finish
    assert "".join(pieces) == whole.choices[0].message.content
    assert finish == whole.choices[0].finish_reason
    assert usage is not None and usage.total_tokens == whole.usage.total_tokens  # type: ignore[union-attr]


def test_completions_and_stop(oai: openai.OpenAI) -> None:
    resp = oai.completions.create(
        model=MODEL, prompt="One, two, three, four,", max_tokens=20, temperature=0, stop=[" six"]
    )
    text = resp.choices[0].text
    assert " six" not in text and resp.choices[0].finish_reason in ("stop", "length")
    short = oai.completions.create(model=MODEL, prompt="Hi", temperature=0)
    assert short.usage.completion_tokens <= 16  # type: ignore[union-attr]


def test_json_schema_response_format(oai: openai.OpenAI) -> None:
    schema = {
        "type": "object",
        "properties": {
            "city": {"type": "string", "maxLength": 30},
            "country": {"type": "string", "maxLength": 30},
        },
        "required": ["city", "country"],
        "additionalProperties": False,
    }
    resp = oai.chat.completions.create(
        model=MODEL,
        messages=[{"role": "user", "content": "Where is the Eiffel Tower?"}],
        temperature=0,
        max_tokens=100,
        response_format={"type": "json_schema", "json_schema": {"name": "place", "schema": schema}},
    )
    value = json.loads(resp.choices[0].message.content or "")
    assert set(value) == {"city", "country"}


def test_model_list(oai: openai.OpenAI) -> None:
    ids = [m.id for m in oai.models.list()]
    assert "smollm2-135m-instruct-q4" in ids


def test_errors_have_openai_shape(oai: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as err:
        oai.chat.completions.create(model=MODEL, messages=MESSAGES, n=17)
    body = err.value.body
    assert isinstance(body, dict) and body["type"] == "invalid_request_error"
    assert body["param"] == "n" and "1 to 16" in body["message"]
    with pytest.raises(openai.BadRequestError):
        oai.chat.completions.create(model=MODEL, messages=[], max_tokens=5)
    with pytest.raises(openai.NotFoundError):
        oai.get("/nope", cast_to=object)


def test_the_engine_extension_picks_the_engine(oai: openai.OpenAI) -> None:
    """`engine` (sent with extra_body) selects the engine as on /generate: no browser tab
    is attached to this server, so "browser" is the documented 503."""
    resp = oai.chat.completions.create(
        model=MODEL,
        messages=MESSAGES,
        max_tokens=4,
        temperature=0,  # type: ignore[arg-type]
        extra_body={"engine": "native"},
    )
    assert resp.choices[0].message.content
    with pytest.raises(openai.APIStatusError) as browser:
        oai.completions.create(
            model=MODEL, prompt="Hi", max_tokens=4, extra_body={"engine": "browser"}
        )
    assert browser.value.status_code == 503
    with pytest.raises(openai.BadRequestError):
        oai.completions.create(model=MODEL, prompt="Hi", max_tokens=4, extra_body={"engine": "gpu"})


def test_a_prompt_longer_than_the_context_is_context_length_exceeded(
    oai: openai.OpenAI, server: Server
) -> None:
    """OpenAI's clients look for this code (issue 33 item 11); the seed API keeps its own."""
    context = server.status()["engine"]["context_length"]
    long_text = "hello " * (context + 10)
    with pytest.raises(openai.BadRequestError) as chat:
        oai.chat.completions.create(
            model=MODEL, messages=[{"role": "user", "content": long_text}], max_tokens=4
        )
    assert (chat.value.code, chat.value.param) == ("context_length_exceeded", "messages")
    with pytest.raises(openai.BadRequestError) as legacy:
        oai.completions.create(model=MODEL, prompt=long_text, max_tokens=4, stream=True)
    assert (legacy.value.code, legacy.value.param) == ("context_length_exceeded", "prompt")


def test_logit_bias_bans_a_word(oai: openai.OpenAI, server: Server) -> None:
    """logit_bias -100 on the token the greedy answer starts with (issue 33 item 10): the
    answer no longer starts with it; other biases leave the greedy answer as it was."""
    prompt = "The capital of France is"
    first = oai.completions.create(
        model=MODEL, prompt=prompt, max_tokens=6, temperature=0, logprobs=0
    )
    assert first.choices[0].logprobs is not None and first.choices[0].logprobs.tokens
    word = first.choices[0].logprobs.tokens[0]
    ids = httpx.post(
        f"{server.base_url}/tokenize", json={"text": word, "parse_special": False}, timeout=30
    ).json()["data"]["tokens"]
    assert len(ids) == 1, f"{word!r} is not one token: {ids}"
    banned = oai.completions.create(
        model=MODEL,
        prompt=prompt,
        max_tokens=6,
        temperature=0,
        logprobs=0,
        logit_bias={str(ids[0]): -100},
    )
    assert banned.choices[0].logprobs is not None
    assert banned.choices[0].logprobs.tokens[0] != word
    assert not banned.choices[0].text.startswith(word)
    # A small bias on an unrelated token changes nothing here.
    again = oai.completions.create(
        model=MODEL, prompt=prompt, max_tokens=6, temperature=0, logit_bias={"0": 0.5}
    )
    assert again.choices[0].text == first.choices[0].text


def _streamed_choices(stream: Any) -> dict[int, str]:
    texts: dict[int, str] = {}
    for chunk in stream:
        for choice in chunk.choices:
            texts[choice.index] = texts.get(choice.index, "") + (choice.delta.content or "")
    return texts


def test_n_choices_streamed_and_not(oai: openai.OpenAI) -> None:
    """n: 3 (issue 33 item 10): three sequences generated together. Greedy, each choice is
    the n=1 answer; sampled with a seed, choice i is the n=1 answer with seed + i."""
    ask: dict[str, Any] = {"model": MODEL, "messages": MESSAGES, "max_tokens": 16}
    greedy = oai.chat.completions.create(**ask, temperature=0).choices[0].message.content
    three = oai.chat.completions.create(**ask, temperature=0, n=3)
    assert [c.index for c in three.choices] == [0, 1, 2]
    assert [c.message.content for c in three.choices] == [greedy] * 3
    assert _streamed_choices(
        oai.chat.completions.create(**ask, temperature=0, n=3, stream=True)
    ) == {0: greedy, 1: greedy, 2: greedy}
    sampled = {**ask, "temperature": 1.0}
    alone = [
        oai.chat.completions.create(**sampled, seed=40 + i).choices[0].message.content
        for i in range(3)
    ]
    together = oai.chat.completions.create(**sampled, seed=40, n=3)
    assert [c.message.content for c in together.choices] == alone
    assert together.usage is not None and together.usage.completion_tokens > 0
    streamed = _streamed_choices(oai.chat.completions.create(**sampled, seed=40, n=3, stream=True))
    assert streamed == dict(enumerate(alone))
    legacy = oai.completions.create(
        model=MODEL, prompt="Once upon a time", max_tokens=8, n=3, temperature=0
    )
    assert len({c.text for c in legacy.choices}) == 1 and len(legacy.choices) == 3
