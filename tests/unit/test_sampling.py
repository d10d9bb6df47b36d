"""engine/native/sampling.py without a decode: the chain SamplerChain builds from the request
parameters (run on crafted logits), the greedy fast path's decision and its argmax, the
grammar path's check-then-resample, and grammar_compiles on a real vocabulary (the
default model loaded vocabulary-only, well under a second)."""

from __future__ import annotations

import ctypes
from collections.abc import Iterator
from typing import Any

import llama_cpp
import numpy as np
import pytest

from browser_llm.core.types import GenerationParams
from browser_llm.engine.native import sampling
from browser_llm.engine.native.sampling import SamplerChain, grammar_compiles
from browser_llm.engine.native.whitespace_merge import WhitespaceMerges
from browser_llm.grammar.check import json_constraint
from browser_llm.grammar.repeated_items import RepeatedItems
from tests.modelfiles import smollm2_path

N_VOCAB = 16  # model-free chains: a small made-up vocabulary
YES_NO = 'root ::= "yes" | "no"'


# ---- helpers -------------------------------------------------------------------------
def _chain(
    n_vocab: int = N_VOCAB, eog: tuple[int, ...] = (), vocab: Any = None, **kw: Any
) -> SamplerChain:
    return SamplerChain(GenerationParams(**kw), n_vocab, eog, vocab)


def _pick(chain: SamplerChain, logits: np.ndarray) -> int:
    """What llama_sampler_sample does with a context: apply the chain to every candidate,
    take the selected one, record it in the chain's state."""
    data = (llama_cpp.llama_token_data * len(logits))()
    for i, logit in enumerate(logits):
        data[i].id, data[i].logit, data[i].p = i, float(logit), 0.0
    arr = llama_cpp.llama_token_data_array(data, len(logits), -1, False)
    llama_cpp.llama_sampler_apply(chain._chain, ctypes.byref(arr))
    assert 0 <= arr.selected < arr.size
    token = int(arr.data[arr.selected].id)
    llama_cpp.llama_sampler_accept(chain._chain, token)
    return token


@pytest.fixture
def fake_logits(monkeypatch: pytest.MonkeyPatch) -> dict[str, np.ndarray]:
    """sample()'s logits row comes from `rows['row']` instead of a llama.cpp context."""
    rows: dict[str, np.ndarray] = {}
    calls: list[tuple[Any, int, int]] = []

    def fake_row(ctx: Any, output_index: int, n_vocab: int) -> np.ndarray:
        calls.append((ctx, output_index, n_vocab))
        row = rows["row"]
        assert row.shape == (n_vocab,)
        return row

    monkeypatch.setattr(sampling, "logits_row", fake_row)
    rows["calls"] = calls  # type: ignore[assignment]
    return rows


# ---- the fast path decision ------------------------------------------------------------
@pytest.mark.parametrize(
    ("params", "fast"),
    [
        ({"temperature": 0.0}, True),
        ({"temperature": -1.0}, True),  # anything <= 0 is greedy
        ({"temperature": 0.0, "ignore_eos": True}, True),  # the ban is done in numpy
        ({"temperature": 0.0, "top_k": 1, "top_p": 0.1, "seed": 3}, True),  # unused by greedy
        ({"temperature": 0.01}, False),
        ({"temperature": 0.0, "frequency_penalty": 0.5}, False),
        ({"temperature": 0.0, "presence_penalty": 0.5}, False),
        ({"temperature": 0.0, "frequency_penalty": -0.5}, False),  # negative is a penalty too
    ],
)
def test_argmax_fast_path_only_for_plain_greedy(params: dict[str, Any], fast: bool) -> None:
    chain = _chain(**params)
    try:
        assert chain._argmax_only is fast
    finally:
        chain.free()


def test_a_grammar_turns_the_fast_path_off(vocab: Any) -> None:
    chain = _chain(llama_cpp.llama_vocab_n_tokens(vocab), vocab=vocab, temperature=0.0)
    with_grammar = _chain(
        llama_cpp.llama_vocab_n_tokens(vocab), vocab=vocab, temperature=0.0, grammar=YES_NO
    )
    try:
        assert chain._argmax_only and chain._grammar is None
        assert not with_grammar._argmax_only and with_grammar._grammar is not None
    finally:
        chain.free()
        with_grammar.free()


# ---- the fast path itself --------------------------------------------------------------
def test_argmax_takes_the_first_highest_logit(fake_logits: dict[str, np.ndarray]) -> None:
    row = np.zeros(N_VOCAB, dtype=np.float32)
    row[[3, 9]] = 5.0  # a tie: greedy takes the lower id
    row[12] = 4.0
    fake_logits["row"] = row
    chain = _chain(temperature=0.0)
    try:
        assert chain.sample("ctx", 7) == 3
        calls: Any = fake_logits["calls"]
        assert calls[-1] == ("ctx", 7, N_VOCAB)
    finally:
        chain.free()


def test_ignore_eos_skips_end_tokens_without_touching_the_logits(
    fake_logits: dict[str, np.ndarray],
) -> None:
    row = np.arange(N_VOCAB, dtype=np.float32)  # highest: 15, then 14, 13, ...
    fake_logits["row"] = row
    before = row.copy()
    banned = _chain(eog=(15, 14), temperature=0.0, ignore_eos=True)
    allowed = _chain(eog=(15, 14), temperature=0.0)
    try:
        assert banned.sample(None, 0) == 13
        assert allowed.sample(None, 0) == 15  # without ignore_eos the end token wins
        # The row is llama.cpp's own logits buffer (a view): the ban works on a copy.
        assert np.array_equal(row, before)
    finally:
        banned.free()
        allowed.free()


def test_argmax_without_a_banned_winner_matches_the_chain(
    fake_logits: dict[str, np.ndarray],
) -> None:
    rng = np.random.default_rng(5)
    for _ in range(20):
        row = rng.normal(size=N_VOCAB).astype(np.float32)
        fake_logits["row"] = row
        fast = _chain(eog=(0,), temperature=0.0, ignore_eos=True)
        slow = _chain(eog=(0,), temperature=0.0, ignore_eos=True, presence_penalty=1e-9)
        try:
            assert not slow._argmax_only
            assert fast.sample(None, 0) == _pick(slow, row)
        finally:
            fast.free()
            slow.free()


# ---- the llama.cpp chain built from the parameters -----------------------------------
def test_greedy_chain_picks_the_highest() -> None:
    chain = _chain(temperature=0.0, presence_penalty=1e-9)  # the chain, not the fast path
    try:
        row = np.zeros(N_VOCAB, dtype=np.float32)
        row[6] = 2.0
        assert [_pick(chain, row) for _ in range(3)] == [6, 6, 6]
    finally:
        chain.free()


@pytest.mark.parametrize("field", ["frequency_penalty", "presence_penalty"])
def test_penalties_lower_tokens_already_generated(field: str) -> None:
    row = np.full(N_VOCAB, -10.0, dtype=np.float32)
    row[4], row[8] = 1.0, 0.9
    penalised = _chain(temperature=0.0, **{field: 0.5})
    try:
        # 4 wins, then pays 0.5 for having been generated: 0.5 < 0.9, so 8 comes next.
        assert [_pick(penalised, row) for _ in range(2)] == [4, 8]
    finally:
        penalised.free()


def test_frequency_penalty_grows_with_each_repeat_and_presence_does_not() -> None:
    row = np.full(N_VOCAB, -10.0, dtype=np.float32)
    row[1], row[2] = 3.0, 1.6
    freq = _chain(temperature=0.0, frequency_penalty=1.0)
    pres = _chain(temperature=0.0, presence_penalty=1.0)
    try:
        # Frequency: 3 -> 2 -> 1 (< 1.6): the third pick changes.
        assert [_pick(freq, row) for _ in range(3)] == [1, 1, 2]
        # Presence: 3 -> 2, and stays 2 (> 1.6) however often 1 was picked.
        assert [_pick(pres, row) for _ in range(4)] == [1, 1, 1, 1]
    finally:
        freq.free()
        pres.free()


def test_ignore_eos_in_the_chain_bans_every_end_token() -> None:
    row = np.arange(N_VOCAB, dtype=np.float32)
    chain = _chain(eog=(15, 13), temperature=0.0, ignore_eos=True, presence_penalty=1e-9)
    try:
        assert _pick(chain, row) == 14
        row2 = row.copy()
        row2[14] = -5.0
        assert _pick(chain, row2) == 12  # 15 and 13 are both banned
    finally:
        chain.free()


def test_top_k_one_is_greedy_at_any_temperature() -> None:
    row = np.linspace(0.0, 1.0, N_VOCAB, dtype=np.float32)  # a flat-ish distribution
    chain = _chain(temperature=2.0, top_k=1, seed=1)
    try:
        assert {_pick(chain, row) for _ in range(50)} == {N_VOCAB - 1}
    finally:
        chain.free()


def test_top_p_cuts_the_tail() -> None:
    # Probabilities at temperature 1: token 0 about 0.6, the rest share 0.4.
    row = np.full(N_VOCAB, 0.0, dtype=np.float32)
    row[0] = np.log(0.6 / (0.4 / (N_VOCAB - 1)))
    narrow = _chain(temperature=1.0, top_p=0.5, top_k=N_VOCAB, seed=2)
    wide = _chain(temperature=1.0, top_p=1.0, top_k=N_VOCAB, seed=2)
    try:
        assert {_pick(narrow, row) for _ in range(100)} == {0}
        assert len({_pick(wide, row) for _ in range(100)}) > 1
    finally:
        narrow.free()
        wide.free()


def test_a_seed_fixes_the_draws() -> None:
    row = np.zeros(N_VOCAB, dtype=np.float32)  # uniform

    def draws(seed: int | None) -> list[int]:
        chain = _chain(temperature=1.0, top_p=1.0, top_k=N_VOCAB, seed=seed)
        try:
            return [_pick(chain, row) for _ in range(40)]
        finally:
            chain.free()

    assert draws(7) == draws(7)
    assert draws(7) != draws(8)
    assert draws(2**40 + 7) == draws(7)  # seeds are taken modulo 2**32
    assert len(set(draws(7))) > 1  # really sampled, not greedy


def test_free_is_idempotent() -> None:
    chain = _chain(temperature=0.5, frequency_penalty=0.1, eog=(1,), ignore_eos=True)
    chain.free()
    chain.free()
    assert chain._chain is None


# ---- grammars on a real vocabulary -----------------------------------------------------
@pytest.fixture(scope="module")
def vocab() -> Iterator[Any]:
    llama_cpp.llama_backend_init()
    params = llama_cpp.llama_model_default_params()
    params.vocab_only = True
    model = llama_cpp.llama_model_load_from_file(str(smollm2_path()).encode(), params)
    assert model, "the default model's vocabulary did not load"
    try:
        yield llama_cpp.llama_model_get_vocab(model)
    finally:
        llama_cpp.llama_model_free(model)


def _token(vocab: Any, text: str) -> int:
    buf = (llama_cpp.llama_token * 8)()
    raw = text.encode()
    n = llama_cpp.llama_tokenize(vocab, raw, len(raw), buf, 8, False, True)
    assert n == 1, f"{text!r} is {n} tokens in this vocabulary"
    return int(buf[0])


def test_grammar_compiles_accepts_good_and_refuses_bad_grammars(vocab: Any) -> None:
    assert grammar_compiles(vocab, YES_NO)
    assert grammar_compiles(vocab, json_constraint(True, None))
    schema = {
        "type": "object",
        "properties": {"name": {"type": "string"}, "age": {"type": "integer"}},
        "required": ["name", "age"],
    }
    assert grammar_compiles(vocab, json_constraint(False, schema))
    assert not grammar_compiles(vocab, 'root ::= "unterminated')
    assert not grammar_compiles(vocab, 'start ::= "no root rule"')
    assert not grammar_compiles(vocab, "root ::= undefined-rule")
    assert not grammar_compiles(vocab, 'root ::= "\ud800"')  # not encodable as UTF-8


def test_a_grammar_that_does_not_parse_is_a_value_error(vocab: Any) -> None:
    with pytest.raises(ValueError, match="grammar"):
        _chain(llama_cpp.llama_vocab_n_tokens(vocab), vocab=vocab, grammar="root ::= (")


def test_grammar_resamples_only_when_the_pick_is_refused(
    vocab: Any, fake_logits: dict[str, np.ndarray]
) -> None:
    n_vocab = llama_cpp.llama_vocab_n_tokens(vocab)
    yes, no, x = _token(vocab, "yes"), _token(vocab, "no"), _token(vocab, "x")
    eos = llama_cpp.llama_vocab_eos(vocab)
    row = np.zeros(n_vocab, dtype=np.float32)
    row[x], row[no], row[yes] = 10.0, 5.0, 4.0
    fake_logits["row"] = row
    chain = _chain(n_vocab, (eos,), vocab, temperature=0.0, grammar=YES_NO)
    try:
        # "x" is the argmax but the grammar refuses it: the best allowed token is "no".
        assert chain.sample(None, 0) == no
        # After "no" the grammar is complete: only end tokens are allowed now.
        row[eos] = 1.0
        assert chain.sample(None, 0) == eos
        row[eos] = -3.0  # another end token of this vocabulary (logit 0) beats it now
        assert llama_cpp.llama_vocab_is_eog(vocab, chain.sample(None, 0))
    finally:
        chain.free()
    row[yes] = 20.0  # allowed and the argmax: taken as is
    chain = _chain(n_vocab, (eos,), vocab, temperature=0.0, grammar=YES_NO)
    try:
        assert chain.sample(None, 0) == yes
    finally:
        chain.free()


# ---- the lone-whitespace trap (engine/native/whitespace_merge.py) ------------------------
@pytest.fixture(scope="module")
def merges(vocab: Any) -> WhitespaceMerges:
    buf = ctypes.create_string_buffer(256)

    def piece(token: int) -> bytes:
        n = llama_cpp.llama_token_to_piece(vocab, token, buf, len(buf), 0, False)
        return buf.raw[:n]

    return WhitespaceMerges(llama_cpp.llama_vocab_n_tokens(vocab), piece)


def test_whitespace_merges_of_the_real_vocabulary(vocab: Any, merges: WhitespaceMerges) -> None:
    space = merges.get(_token(vocab, " "))
    assert space is not None
    quote = int(np.flatnonzero(space.merged == _token(vocab, ' "'))[0])
    assert space.rests[quote] == _token(vocab, '"')
    assert '"' in space.next_chars and "a" in space.next_chars
    assert not set("0123456789") & space.next_chars  # SmolLM2 writes digits apart
    assert merges.get(_token(vocab, "a")) is None
    assert merges.get(_token(vocab, ' "')) is None  # not whitespace only


# A string value after an optional space; `)` and `;` inside it, so `");` is allowed.
AFTER_SPACE = 'root ::= "a" " "? "\\"" [a-z);]* "\\""'
AFTER_SPACE_OR_NUMBER = 'root ::= "a" " "? ("\\"" [a-z);]* "\\"" | [0-9]+)'


def _after_lone_space(
    vocab: Any, merges: WhitespaceMerges, rows: dict[str, np.ndarray], grammar: str
) -> tuple[SamplerChain, np.ndarray]:
    """A greedy chain that took "a" then a lone " " (` "` second best); the next row is zeros."""
    n_vocab = llama_cpp.llama_vocab_n_tokens(vocab)
    chain = SamplerChain(
        GenerationParams(temperature=0.0, grammar=grammar), n_vocab, (), vocab, merges
    )
    row = np.zeros(n_vocab, dtype=np.float32)
    rows["row"] = row
    row[_token(vocab, "a")] = 10.0
    assert chain.sample(None, 0) == _token(vocab, "a")
    row[:] = 0.0
    row[_token(vocab, " ")], row[_token(vocab, ' "')] = 10.0, 9.0
    assert chain.sample(None, 0) == _token(vocab, " ")
    row[:] = 0.0
    return chain, row


def test_a_refusal_after_a_lone_space_takes_the_rest_of_the_merged_token(
    vocab: Any, merges: WhitespaceMerges, fake_logits: dict[str, np.ndarray]
) -> None:
    chain, row = _after_lone_space(vocab, merges, fake_logits, AFTER_SPACE)
    try:
        # The model means a number ("1", refused); after a lone space it rates `");` above
        # `"`. The space and the `"` are what ` "`, its second choice a step ago, writes.
        row[_token(vocab, "1")], row[_token(vocab, '");')], row[_token(vocab, '"')] = 10, 2, -20
        assert chain.sample(None, 0) == _token(vocab, '"')
    finally:
        chain.free()


@pytest.mark.parametrize("best", ['"', '");'])
def test_an_allowed_pick_after_a_lone_space_is_kept(
    vocab: Any, merges: WhitespaceMerges, fake_logits: dict[str, np.ndarray], best: str
) -> None:
    """Nothing refused, nothing changed: the answer is the model's own, token for token."""
    chain, row = _after_lone_space(vocab, merges, fake_logits, AFTER_SPACE)
    try:
        row[_token(vocab, best)] = 10.0
        assert chain.sample(None, 0) == _token(vocab, best)
    finally:
        chain.free()


def test_no_healing_where_the_grammar_allows_what_the_space_stays_apart_from(
    vocab: Any, merges: WhitespaceMerges, fake_logits: dict[str, np.ndarray]
) -> None:
    """A number may follow the space too (digits are written apart from it): no trap, the
    refused pick is resampled as before."""
    chain, row = _after_lone_space(vocab, merges, fake_logits, AFTER_SPACE_OR_NUMBER)
    try:
        row[_token(vocab, "x")], row[_token(vocab, '");')], row[_token(vocab, '"')] = 10, 2, -20
        row[_token(vocab, "1")] = -5.0
        assert chain.sample(None, 0) == _token(vocab, '");')
    finally:
        chain.free()


# ---- a refused greedy pick: the highest logits first, then every token -------------------
@pytest.mark.parametrize("penalty", [0.0, 1.0])
@pytest.mark.parametrize("ignore_eos", [False, True])
@pytest.mark.parametrize("seed", range(6))
def test_a_refused_greedy_pick_is_what_filtering_every_token_gives(
    vocab: Any, fake_logits: dict[str, np.ndarray], penalty: float, ignore_eos: bool, seed: int
) -> None:
    """_greedy_allowed checks the 64 highest logits; the answer is the full filter's, ties
    (the lowest id wins) and penalised tokens included, and it falls back to the full
    filter when no allowed token is among them."""
    n_vocab = llama_cpp.llama_vocab_n_tokens(vocab)
    rng = np.random.default_rng(seed)
    row = rng.normal(0.0, 3.0, n_vocab).astype(np.float32)
    brace, brace_quote = _token(vocab, "{"), _token(vocab, '{"')
    top = float(row.max())
    if seed % 3 == 0:  # two allowed tokens tie just below the refused argmax
        row[brace] = row[brace_quote] = top - 0.5
    elif seed % 3 == 1:  # an allowed token well inside the highest 64
        row[brace_quote] = np.partition(row, -20)[-20]
    # else: every allowed token is where the noise put it (most likely far below)
    fake_logits["row"] = row
    eos = llama_cpp.llama_vocab_eos(vocab)
    params = {"temperature": 0.0, "frequency_penalty": penalty, "ignore_eos": ignore_eos}
    grammar = json_constraint(True, None)
    chain = _chain(n_vocab, (eos,), vocab, grammar=grammar, **params)
    reference = _chain(n_vocab, (eos,), vocab, grammar=grammar, **params)
    try:
        if penalty:  # a history for the penalty to act on: the same tokens in both chains
            for c in (chain, reference):
                for token in (brace, brace_quote, brace):
                    llama_cpp.llama_sampler_accept(c._chain, token)
        assert not chain._grammar_allows(int(row.argmax()))
        assert chain.choose(None, 0) == reference._resample(None, 0)
    finally:
        chain.free()
        reference.free()


# ---- an array repeating one item (grammar/repeated_items.py) ------------------------------
def _tokens(vocab: Any, text: str) -> list[int]:
    buf = (llama_cpp.llama_token * 256)()
    raw = text.encode()
    n = llama_cpp.llama_tokenize(vocab, raw, len(raw), buf, 256, False, False)
    assert n > 0
    return [int(t) for t in buf[:n]]


@pytest.mark.parametrize("temperature", [0.0, 0.7])
@pytest.mark.parametrize("watched", [True, False])
def test_a_fourth_identical_item_is_set_aside_for_the_next_best_choice(
    vocab: Any, fake_logits: dict[str, np.ndarray], temperature: float, watched: bool
) -> None:
    """The argmax `,` would start a fourth identical object: the sampler takes `]`, the
    best token the grammar allows that does not (only when the sequence watches)."""
    n_vocab = llama_cpp.llama_vocab_n_tokens(vocab)
    item = '{"name": "milk", "amount": "10g"}'
    comma, close = _token(vocab, ","), _token(vocab, "]")
    row = np.zeros(n_vocab, dtype=np.float32)
    row[comma], row[close] = 30.0, 20.0
    fake_logits["row"] = row
    eos = llama_cpp.llama_vocab_eos(vocab)
    chain = _chain(
        n_vocab, (eos,), vocab, temperature=temperature, seed=1, grammar=json_constraint(True, None)
    )
    if watched:
        buf = ctypes.create_string_buffer(256)

        def piece(token: int) -> bytes:
            n = llama_cpp.llama_token_to_piece(vocab, token, buf, len(buf), 0, False)
            return buf.raw[:n]

        chain.watch_repeats(RepeatedItems(3), piece)
    try:
        for token in _tokens(vocab, '{"items": [' + ", ".join([item] * 3)):
            assert chain._grammar_allows(token)
            chain.accept(token)
        assert chain.choose(None, 0) == (close if watched else comma)
    finally:
        chain.free()
