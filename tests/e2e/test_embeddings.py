"""POST /v1/embeddings through the openai package, on the real engine's pooled embeddings."""

from __future__ import annotations

import base64
import concurrent.futures
import math
import struct
from collections.abc import Iterator

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


def test_vectors_are_normalised_deterministic_and_batched_as_single(oai: openai.OpenAI) -> None:
    texts = ["The cat sat on the mat.", "Quarterly revenue grew by four percent.", "héllo 世界"]
    batch = oai.embeddings.create(model=MODEL, input=texts)
    assert batch.model == MODEL and len(batch.data) == 3
    assert [d.index for d in batch.data] == [0, 1, 2]
    width = len(batch.data[0].embedding)
    assert width > 0 and all(len(d.embedding) == width for d in batch.data)
    for d in batch.data:
        assert math.isclose(math.fsum(v * v for v in d.embedding), 1.0, rel_tol=1e-4)
    assert batch.usage.prompt_tokens == batch.usage.total_tokens > 0
    # One text alone gives the vector it gave in the batch (same build, same tokens).
    single = oai.embeddings.create(model=MODEL, input=texts[1]).data[0].embedding
    assert single == pytest.approx(batch.data[1].embedding, abs=1e-5)
    assert batch.data[0].embedding != batch.data[1].embedding


def test_base64_is_the_same_floats(oai: openai.OpenAI) -> None:
    plain = oai.embeddings.create(model=MODEL, input="one two three", encoding_format="float")
    packed = oai.embeddings.with_raw_response.create(
        model=MODEL, input="one two three", encoding_format="base64"
    )
    raw = packed.http_response.json()["data"][0]["embedding"]
    data = base64.b64decode(raw)
    floats = struct.unpack(f"<{len(data) // 4}f", data)
    assert list(floats) == pytest.approx(plain.data[0].embedding, abs=1e-6)


def test_refusals_name_their_field(oai: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as wrong_size:
        oai.embeddings.create(model=MODEL, input="x", dimensions=7)
    assert wrong_size.value.body["param"] == "dimensions"  # type: ignore[index]
    with pytest.raises(openai.BadRequestError) as empty:
        oai.embeddings.create(model=MODEL, input="")
    assert empty.value.body["param"] == "input"  # type: ignore[index]
    with pytest.raises(openai.NotFoundError):
        oai.embeddings.create(model="text-embedding-3-small", input="x")


def test_embeddings_and_eight_streams_interleave_and_all_finish(server: Server) -> None:
    base = server.base_url.replace("/api/v1", "/v1")
    chat = {
        "model": MODEL,
        "messages": [{"role": "user", "content": "Tell me a story about a fox."}],
        "max_tokens": 48,
        "stream": True,
    }

    def stream_one(_: int) -> int:
        with (
            httpx.Client(base_url=base, timeout=300) as client,
            client.stream("POST", "/chat/completions", json=chat) as resp,
        ):
            assert resp.status_code == 200
            return sum(1 for line in resp.iter_lines() if line.startswith("data: {"))

    def embed_one(i: int) -> int:
        texts = [f"document {i}-{k} about foxes and rivers" for k in range(4)]
        body = {"model": MODEL, "input": texts}
        resp = httpx.post(f"{base}/embeddings", json=body, timeout=300)
        assert resp.status_code == 200, resp.text
        return len(resp.json()["data"])

    with concurrent.futures.ThreadPoolExecutor(12) as pool:
        streams = [pool.submit(stream_one, i) for i in range(8)]
        embeds = [pool.submit(embed_one, i) for i in range(4)]
        assert [f.result(timeout=300) for f in embeds] == [4] * 4
        assert all(f.result(timeout=300) > 1 for f in streams)


def test_token_arrays_are_the_models_own_ids(oai: openai.OpenAI, server: Server) -> None:
    """`input` as int[] and int[][] (issue 33 item 9): the model's own token ids, read as
    they are; the same ids as the text's own tokenization give the text's vector."""
    texts = ["The cat sat on the mat.", "héllo 世界"]
    ids = [
        httpx.post(
            f"{server.base_url}/tokenize", json={"text": t, "add_special": True}, timeout=30
        ).json()["data"]["tokens"]
        for t in texts
    ]
    by_text = oai.embeddings.create(model=MODEL, input=texts)
    one = oai.embeddings.create(model=MODEL, input=ids[0])
    assert one.usage.prompt_tokens == len(ids[0])
    assert one.data[0].embedding == pytest.approx(by_text.data[0].embedding, abs=1e-5)
    both = oai.embeddings.create(model=MODEL, input=ids)
    assert [d.index for d in both.data] == [0, 1]
    for got, want in zip(both.data, by_text.data, strict=True):
        assert got.embedding == pytest.approx(want.embedding, abs=1e-5)


def test_a_token_id_outside_the_vocabulary_is_a_400_naming_its_position(
    oai: openai.OpenAI,
) -> None:
    with pytest.raises(openai.BadRequestError) as many:
        oai.embeddings.create(model=MODEL, input=[[1, 2], [3, 10**9]])
    assert many.value.param == "input" and "input[1][1]" in many.value.message
    with pytest.raises(openai.BadRequestError) as one:
        oai.embeddings.create(model=MODEL, input=[5, -1])
    assert one.value.param == "input" and "input[1]" in one.value.message
