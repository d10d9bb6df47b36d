"""A thinking model's reasoning apart from its answer, on the real engine: a copy of the
default model whose chat template opens a `<think>` block in the generation prompt
(tests/think_template.py). What the model writes is never assumed: the same prompt sent
raw (the split off) gives the text as generated, and each dialect's reasoning and answer
fields must be that text split at its `</think>` (or all reasoning where it wrote none)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import anthropic
import httpx
import openai
import pytest

from browser_llm.core.types import ChatMessage
from browser_llm.engine.base import GenerationRequest
from browser_llm.engine.chat_template import ChatTemplate
from browser_llm.engine.prompt import prompt_text
from browser_llm.service.thinking.split import ThinkMarkers, reasoning_end, split_whole
from tests.e2e.conftest import Server, served
from tests.e2e.test_models_real import write_user_models
from tests.think_template import THINK_TEMPLATE, think_history_model, think_model

MODEL = "smollm2-think"
HISTORY = "smollm2-think-history"  # its template renders earlier turns' reasoning
THINK = ThinkMarkers("<think>", "</think>")
MAX = 48
# An earlier turn that thought (the template keeps it): the model tends to close the
# block itself then; alone, it tends to write no `</think>`. Both paths are checked.
SHOWN = [
    {"role": "user", "content": "What is 2+2?"},
    {"role": "assistant", "content": "<think>\nThe user asks 2+2. That is 4.\n</think>\n\n4"},
    {"role": "user", "content": "What is 3+3?"},
]
CONVERSATIONS = (SHOWN, [{"role": "user", "content": "Name a colour."}])
OFF = (("enable_thinking", False),)


@pytest.fixture(scope="module")
def think_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    tmp = tmp_path_factory.mktemp("think")
    path = think_model(tmp / "files")
    history = think_history_model(tmp / "files")
    write_user_models(
        tmp / "models",
        [
            {"id": MODEL, "source": {"type": "file", "file": str(path)}},
            {"id": HISTORY, "source": {"type": "file", "file": str(history)}},
        ],
    )
    # One sequence, no prefix reuse: each prompt is read the same way, so greedy answers
    # to the same tokens are the same text.
    env = {"BROWSER_LLM_PARALLEL": "1", "BROWSER_LLM_PREFIX_CACHE": "false"}
    with served(tmp, BROWSER_LLM_MODEL=MODEL, BROWSER_LLM_CONTEXT_SIZE="1024", **env) as srv:
        assert srv.status()["status"] == "ready", srv.log.read_text()
        yield srv


@pytest.fixture(scope="module")
def root(think_server: Server) -> Iterator[httpx.Client]:
    base = think_server.base_url.removesuffix("/api/v1")
    with httpx.Client(base_url=base, timeout=300) as client:
        yield client


def _raw(root: httpx.Client, messages: list[Any], variables: Any = ()) -> tuple[str, int]:
    """The text the model writes after the template's prompt, unsplit (raw: the client
    wrote the template), and its token count."""
    turns = tuple(ChatMessage(m["role"], m["content"]) for m in messages)
    request = GenerationRequest(messages=turns, template_vars=variables)
    prompt, _ = prompt_text(ChatTemplate(THINK_TEMPLATE, "", ""), request)
    body = {
        "model": MODEL,
        "prompt": prompt,
        "raw": True,
        "stream": False,
        "options": {"temperature": 0, "num_predict": MAX},
    }
    resp = root.post("/api/generate", json=body)
    assert resp.status_code == 200, resp.text
    assert "thinking" not in resp.json()
    return resp.json()["response"], resp.json()["eval_count"]


def _chat(messages: list[Any], **extra: Any) -> dict[str, Any]:
    return {"model": MODEL, "messages": messages, "temperature": 0, "max_tokens": MAX, **extra}


def _sse(text: str) -> list[Any]:
    datas = [line[6:] for line in text.splitlines() if line.startswith("data: ")]
    return [json.loads(d) for d in datas if d != "[DONE]"]


@pytest.mark.parametrize("messages", CONVERSATIONS)
def test_openai_fields_are_the_generated_text_split(root: httpx.Client, messages: Any) -> None:
    raw, tokens = _raw(root, messages)
    expected = split_whole(THINK, True, raw)
    assert any(expected), "the model wrote nothing: nothing was checked"
    # Independent of the splitter: both parts are the model's text, in order, markers out.
    before, close, after = raw.partition("</think>")
    thought = before.strip().removeprefix("<think>").lstrip()  # the marker written again
    assert expected == (thought, after.lstrip() if close else "")
    print(f"\ngenerated {raw!r}")  # which path the model took (pytest -s)
    body = root.post("/v1/chat/completions", json=_chat(messages)).json()
    message = body["choices"][0]["message"]
    assert (message.get("reasoning_content", ""), message["content"]) == expected
    assert message.get("reasoning", "") == expected[0]
    assert body["usage"]["completion_tokens"] == tokens  # the reasoning's tokens counted
    stream = {**_chat(messages), "stream": True, "stream_options": {"include_usage": True}}
    chunks = _sse(root.post("/v1/chat/completions", json=stream).text)
    deltas = [c["choices"][0]["delta"] for c in chunks if c["choices"]]
    streamed = (
        "".join(d.get("reasoning_content") or "" for d in deltas),
        "".join(d.get("content") or "" for d in deltas),
    )
    assert streamed == expected
    assert chunks[-1]["usage"]["completion_tokens"] == tokens


@pytest.mark.parametrize("messages", CONVERSATIONS)
def test_ollama_anthropic_and_seed_fields(
    root: httpx.Client, think_server: Server, messages: Any
) -> None:
    raw, _ = _raw(root, messages)
    reasoning, answer = split_whole(THINK, True, raw)
    ollama = {"model": MODEL, "messages": messages}
    ollama["options"] = {"temperature": 0, "num_predict": MAX}
    lines = [json.loads(x) for x in root.post("/api/chat", json=ollama).text.splitlines()]
    assert "".join(x["message"].get("thinking", "") for x in lines) == reasoning
    assert "".join(x["message"]["content"] for x in lines) == answer

    sdk = anthropic.Anthropic(base_url=str(root.base_url), api_key="unused", max_retries=0)
    with sdk.messages.stream(
        model=MODEL,
        max_tokens=MAX,
        extra_body={"temperature": 0},  # the SDK no longer sends it; the API takes it
        messages=messages,
    ) as stream:
        message = stream.get_final_message()
    thinking = [b.thinking for b in message.content if b.type == "thinking"]
    text = [b.text for b in message.content if b.type == "text"]
    assert ("".join(thinking), "".join(text)) == (reasoning, answer)
    assert all(b.signature for b in message.content if b.type == "thinking")

    if len(messages) == 1:  # the seed API's prompt is one user turn
        seed = {"prompt": messages[0]["content"], "temperature": 0, "max_tokens": MAX}
        resp = httpx.post(f"{think_server.base_url}/generate", json=seed, timeout=300)
        done = resp.json()["data"]
        assert (done.get("reasoning", ""), done["text"]) == (reasoning, answer)


def test_thinking_off_renders_the_closed_block(root: httpx.Client) -> None:
    messages = CONVERSATIONS[1]
    raw, tokens = _raw(root, messages, OFF)
    expected = split_whole(THINK, False, raw)  # a model that opened it anyway: still split
    body = root.post("/v1/chat/completions", json=_chat(messages, reasoning_effort="none")).json()
    message = body["choices"][0]["message"]
    assert (message.get("reasoning_content", ""), message["content"]) == expected
    assert body["usage"]["completion_tokens"] == tokens
    ollama = {"model": MODEL, "prompt": messages[0]["content"], "stream": False, "think": False}
    ollama["options"] = {"temperature": 0, "num_predict": MAX}
    whole = root.post("/api/generate", json=ollama).json()
    assert (whole.get("thinking", ""), whole["response"]) == expected


def _oai(root: httpx.Client) -> openai.OpenAI:
    return openai.OpenAI(
        base_url=f"{str(root.base_url).rstrip('/')}/v1", api_key="unused", max_retries=0
    )


def _tokens_until(root: httpx.Client, messages: Any, raw: str, tokens: int) -> int:
    """The generated tokens that began before the reasoning ended (its `</think>` included),
    counted from the same answer's per-token log-probabilities (their bytes)."""
    end = reasoning_end(THINK, True, raw)
    if end >= len(raw):
        return tokens  # never closed: all of it is reasoning
    end_byte = len(raw[:end].encode())
    body = root.post("/v1/chat/completions", json=_chat(messages, logprobs=True)).json()
    at = count = 0
    for entry in body["choices"][0]["logprobs"]["content"]:
        count += at < end_byte
        at += len(entry["bytes"])
    return count


@pytest.mark.parametrize("messages", CONVERSATIONS)
def test_responses_reasoning_item(root: httpx.Client, messages: Any) -> None:
    raw, tokens = _raw(root, messages)
    reasoning, answer = split_whole(THINK, True, raw)
    thought = _tokens_until(root, messages, raw, tokens)
    oai = _oai(root)
    ask: Any = {"model": MODEL, "input": messages, "temperature": 0, "max_output_tokens": MAX}
    whole = oai.responses.create(**ask, store=False)
    with oai.responses.stream(**ask, store=False) as stream:
        streamed = stream.get_final_response()
    for response in (whole, streamed):
        kinds = [item.type for item in response.output]
        assert kinds == (["reasoning", "message"] if reasoning else ["message"])
        if reasoning:
            item = response.output[0]
            assert item.type == "reasoning" and item.content is not None
            assert "".join(c.text for c in item.content) == reasoning
        assert response.output_text == answer
        assert response.usage is not None
        assert response.usage.output_tokens == tokens
        assert response.usage.output_tokens_details.reasoning_tokens == thought
        assert 0 < thought <= tokens
    print(f"\nreasoning_tokens {thought} of {tokens}; reasoning {reasoning!r}")


SENT_BACK_REASONING = "The user asks 2+2. That is 4."
# What HISTORY_TEMPLATE makes of the conversation below, written out.
SENT_BACK_PROMPT = (
    "<|im_start|>user\nWhat is 2+2?<|im_end|>\n"
    f"<|im_start|>assistant\n<think>\n{SENT_BACK_REASONING}\n</think>\n\n4<|im_end|>\n"
    "<|im_start|>user\nWhat is 3+3?<|im_end|>\n"
    "<|im_start|>assistant\n<think>\n"
)


def _prompt_tokens(root: httpx.Client, model: str, prompt: str) -> int:
    body = {"model": model, "prompt": prompt, "raw": True, "stream": False}
    body["options"] = {"temperature": 0, "num_predict": 1}
    resp = root.post("/api/generate", json=body)
    assert resp.status_code == 200, resp.text
    return int(resp.json()["prompt_eval_count"])


def test_reasoning_sent_back_reaches_a_template_that_renders_it(
    root: httpx.Client, think_server: Server
) -> None:
    first = {"role": "user", "content": "What is 2+2?"}
    then = {"role": "user", "content": "What is 3+3?"}
    block = {"type": "thinking", "thinking": SENT_BACK_REASONING, "signature": "unchecked"}
    said = {"role": "assistant", "content": [block, {"type": "text", "text": "4"}]}
    plain = {"role": "assistant", "content": "4"}
    sdk = anthropic.Anthropic(base_url=str(root.base_url), api_key="unused", max_retries=0)
    # Not loaded yet: count_tokens loads it, as a generation would.
    assert think_server.status()["model"]["id"] != HISTORY
    counted = sdk.messages.count_tokens(model=HISTORY, messages=[first, said, then])  # type: ignore[list-item]
    assert counted.input_tokens == _prompt_tokens(root, HISTORY, SENT_BACK_PROMPT)
    # The Responses API's reasoning item, the same way.
    thought = {"type": "reasoning", "summary": [], "content": [{"type": "reasoning_text"}]}
    thought["content"][0]["text"] = SENT_BACK_REASONING  # type: ignore[index]
    items: Any = [first, thought, plain, then]
    response = _oai(root).responses.create(
        model=HISTORY, input=items, max_output_tokens=1, temperature=0, store=False
    )
    assert response.usage is not None
    assert response.usage.input_tokens == counted.input_tokens
    # A template that does not render earlier reasoning: the prompt is as without it.
    without = sdk.messages.count_tokens(model=MODEL, messages=[first, plain, then])  # type: ignore[list-item]
    sent = sdk.messages.count_tokens(model=MODEL, messages=[first, said, then])  # type: ignore[list-item]
    assert sent.input_tokens == without.input_tokens
