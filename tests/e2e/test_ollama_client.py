"""Ollama's API driven by the official `ollama` package, unchanged, against a real server
and the real default model. Outputs are compared with what the same server gives on its
own API, never with hard-coded text."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import jsonschema
import ollama
import pytest

from browser_llm.config import DEFAULT_MODEL_ID
from tests.e2e.conftest import Server, served
from tests.modelfiles import serve_files, sha256_of, smollm2_path

MODEL = DEFAULT_MODEL_ID
GREEDY = {"temperature": 0, "num_predict": 24}
QUESTION = [{"role": "user", "content": "What is the capital of France?"}]


def host_of(server: Server) -> str:
    return server.base_url.removesuffix("/api/v1")


@pytest.fixture
def client(server: Server) -> Iterator[ollama.Client]:
    with ollama.Client(host=host_of(server), timeout=120) as c:
        yield c


def test_chat_streamed_equals_whole(client: ollama.Client) -> None:
    whole = client.chat(model=MODEL, messages=QUESTION, options=GREEDY)
    assert whole.message.role == "assistant" and whole.message.content
    assert whole.done and whole.done_reason in ("stop", "length")
    assert whole.eval_count and whole.prompt_eval_count and whole.total_duration
    assert whole.eval_duration is not None and whole.load_duration == 0  # already loaded
    parts = list(client.chat(model=MODEL, messages=QUESTION, options=GREEDY, stream=True))
    assert all(not p.done for p in parts[:-1]) and parts[-1].done
    assert "".join(p.message.content or "" for p in parts) == whole.message.content
    assert parts[-1].eval_count == whole.eval_count


def test_generate_matches_the_seed_api(client: ollama.Client, api: httpx.Client) -> None:
    prompt = "Name three colours."
    answer = client.generate(model=MODEL + ":latest", prompt=prompt, options=GREEDY)
    body = {"prompt": prompt, "temperature": 0, "max_tokens": 24}
    seed = api.post("/generate", json=body).json()["data"]
    assert answer.response == seed["text"]
    assert answer.eval_count == seed["usage"]["completion_tokens"]
    assert answer.prompt_eval_count == seed["usage"]["prompt_tokens"]
    streamed = client.generate(model=MODEL, prompt=prompt, options=GREEDY, stream=True)
    assert "".join(p.response for p in streamed) == seed["text"]


def test_num_predict_and_stop(client: ollama.Client) -> None:
    short = client.generate(
        model=MODEL, prompt="Count to ten.", options={**GREEDY, "num_predict": 3}
    )
    assert short.done_reason == "length" and short.eval_count == 3


def test_tags_show_ps(client: ollama.Client) -> None:
    names = [m.model for m in client.list().models]
    assert MODEL + ":latest" in names
    listed = next(m for m in client.list().models if m.model == MODEL + ":latest")
    assert listed.size == smollm2_path().stat().st_size and listed.details is not None
    assert listed.details.format == "gguf" and listed.details.family == "llama"
    shown = client.show(MODEL)
    assert shown.modelinfo is not None and shown.modelinfo["general.architecture"] == "llama"
    assert shown.template and "im_start" in shown.template  # the GGUF's own chat template
    assert shown.capabilities == ["completion", "tools"]
    running = client.ps().models
    assert [m.model for m in running] == [MODEL + ":latest"]
    assert running[0].context_length and running[0].size_vram == 0


def test_format_json_and_schema(client: ollama.Client) -> None:
    answer = client.generate(
        model=MODEL,
        prompt="Describe a cat as JSON.",
        format="json",
        options={"temperature": 0, "num_predict": 200},
    )
    if answer.done_reason == "stop":  # greedy JSON may also run to the limit
        assert isinstance(json.loads(answer.response), dict)
    schema = {
        "type": "object",
        "properties": {"city": {"type": "string", "maxLength": 40}},
        "required": ["city"],
        "additionalProperties": False,
    }
    chat = client.chat(
        model=MODEL,
        messages=QUESTION,
        format=schema,
        options={"temperature": 0, "num_predict": 200},
    )
    if chat.done_reason == "stop":
        jsonschema.validate(json.loads(chat.message.content or ""), schema)


WEATHER_SCHEMA = {
    "type": "object",
    "properties": {"city": {"type": "string", "maxLength": 40}},
    "required": ["city"],
    "additionalProperties": False,
}


def get_weather(city: str) -> str:
    """Get the current weather in a city.

    Args:
        city: The city's name
    """
    return json.dumps({"city": city, "temperature_c": 21})


TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Get the current weather in a city",
        "parameters": WEATHER_SCHEMA,
    },
}


def test_tool_calling_round_trip(client: ollama.Client) -> None:
    ask = [{"role": "user", "content": "What is the weather in Paris? Use the tool."}]
    options = {"temperature": 0, "num_predict": 120}
    first = client.chat(model=MODEL, messages=ask, tools=[TOOL], options=options)
    streamed = list(
        client.chat(model=MODEL, messages=ask, tools=[TOOL], options=options, stream=True)
    )
    streamed_calls = [c for p in streamed for c in p.message.tool_calls or []]
    assert [c.function.name for c in streamed_calls] == [
        c.function.name for c in first.message.tool_calls or []
    ]
    if not first.message.tool_calls:  # the model may answer in prose: then it is text
        assert first.message.content and "".join(p.message.content or "" for p in streamed)
        return
    for call in first.message.tool_calls:
        assert call.function.name == "get_weather"
        jsonschema.validate(dict(call.function.arguments), WEATHER_SCHEMA)
    result = get_weather(**call.function.arguments)
    follow = [
        *ask,
        first.message,
        {"role": "tool", "content": result, "tool_name": "get_weather"},
    ]
    # A Python function as the tool, as the package's own examples pass it.
    final = client.chat(model=MODEL, messages=follow, tools=[get_weather], options=options)
    assert final.done and (final.message.content or final.message.tool_calls)


def test_errors_reach_the_client_as_response_errors(client: ollama.Client) -> None:
    with pytest.raises(ollama.ResponseError) as missing:
        client.chat(model="no-such-model", messages=QUESTION)
    assert missing.value.status_code == 404 and "not found" in missing.value.error
    with pytest.raises(ollama.ResponseError) as refused:
        client.generate(model=MODEL, prompt="x", options={"mirostat": 2})
    assert refused.value.status_code == 400 and "mirostat" in refused.value.error
    with pytest.raises(ollama.ResponseError) as streamed:
        list(client.chat(model=MODEL, messages=QUESTION, stream=True, options={"min_p": 0.5}))
    assert streamed.value.status_code == 400 and "min_p" in streamed.value.error
    with pytest.raises(ollama.ResponseError) as embed:
        client.embed(model=MODEL, input="hello", dimensions=3)
    assert embed.value.status_code == 400 and "dimensions" in embed.value.error


def test_embed_gives_one_normalised_vector_per_input(client: ollama.Client) -> None:
    batch = client.embed(model=MODEL, input=["a red fox", "quarterly revenue"])
    assert len(batch.embeddings) == 2 and batch.prompt_eval_count
    width = len(batch.embeddings[0])
    assert width > 0 and len(batch.embeddings[1]) == width
    for vector in batch.embeddings:
        assert abs(sum(v * v for v in vector) - 1.0) < 1e-3
    single = client.embed(model=MODEL, input="a red fox").embeddings[0]
    assert single == pytest.approx(list(batch.embeddings[0]), abs=1e-5)


def test_pull_from_a_local_file_source_then_delete(tmp_path: Path) -> None:
    models = tmp_path / "models"
    models.mkdir()
    with serve_files({"smol.gguf": smollm2_path()}) as files:
        entry = {
            "id": "pulled",
            "name": "pulled",
            "size_bytes": smollm2_path().stat().st_size,
            "vram_required": "1GB",
            "speed_tier": "fast",
            "quality_tier": "basic",
            "source": {"type": "url", "url": files.url("ok", "smol.gguf")},
            "sha256": sha256_of(smollm2_path()),
        }
        (models / "user-models.json").write_text(json.dumps({"models": [entry]}))
        with (
            served(tmp_path, BROWSER_LLM_MODEL="none") as srv,
            ollama.Client(host=host_of(srv), timeout=120) as client,
        ):
            assert "pulled:latest" not in [m.model for m in client.list().models]
            progress = list(client.pull("pulled", stream=True))
            statuses = [p.status for p in progress]
            assert statuses[0] == "pulling manifest" and statuses[-1] == "success"
            pulling = [p for p in progress if p.digest]
            assert pulling and pulling[-1].completed == pulling[-1].total == entry["size_bytes"]
            assert pulling[-1].digest == "sha256:" + entry["sha256"]
            assert sha256_of(models / "pulled.gguf") == entry["sha256"]
            assert "pulled:latest" in [m.model for m in client.list().models]
            assert client.pull("pulled").status == "success"  # already there
            # It serves at once: loaded on demand by name.
            answer = client.generate(model="pulled", prompt="Hi", options=GREEDY)
            assert answer.done and answer.load_duration and answer.load_duration > 0
            assert [m.model for m in client.ps().models] == ["pulled:latest"]
            assert client.delete("pulled").status == "success"
            assert not (models / "pulled.gguf").exists()
            assert client.ps().models == []
            with pytest.raises(ollama.ResponseError) as gone:
                client.delete("pulled")
            assert gone.value.status_code == 404
