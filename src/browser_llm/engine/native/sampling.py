"""Request parameters -> a llama.cpp sampler chain (one chain per sequence).

A grammar (JSON mode) is not put in the chain: checking it against the whole
vocabulary every step more than halves decode speed. As llama.cpp's own
sampler does, the token is sampled without it, then checked alone; only a
rejected token makes the grammar filter candidates and the chain resample (greedy:
the highest logits first, the same pick as filtering them all),
unless it follows a lone whitespace token the tokenizer would have merged with every
character the grammar allows next (engine/native/whitespace_merge.py). A JSON array's
item repeated over and over is stopped the same way: the token that would start one more
identical item is set aside for the model's best other choice (grammar/repeated_items.py).
"""

from __future__ import annotations

import ctypes
import math
import random
from collections.abc import Callable, Sequence
from typing import Any

import llama_cpp
import numpy as np

from browser_llm.core.types import GenerationParams
from browser_llm.engine.native.model import LlamaModel
from browser_llm.engine.native.whitespace_merge import WhitespaceMerges
from browser_llm.grammar.repeated_items import RepeatedItems

__all__ = ["SamplerChain", "grammar_compiles", "sampler_for"]

_TOKEN_DATA = np.dtype([("id", "<i4"), ("logit", "<f4"), ("p", "<f4")])
# A refused greedy pick: the grammar checks this many of the highest logits, then more.
_TOPS = (64, 2048)
# Picks set aside one after another before the first choice is kept after all.
_MAX_SET_ASIDE = 8


# Numpy views of logits rows by address: np.ctypeslib.as_array builds a ctypes array
# type per call (about 50 us, serial time between decodes). A row's address is where
# llama.cpp keeps that output's logits until its buffer moves, and a moved buffer
# gives new addresses, so a view found by the current address is always the current row.
_ROW_VIEWS: dict[int, np.ndarray[Any, np.dtype[np.float32]]] = {}
_ROW_VIEWS_MAX = 256


def logits_row(ctx: Any, output_index: int, n_vocab: int) -> np.ndarray[Any, np.dtype[np.float32]]:
    """The logits llama.cpp computed for one output of the last decode (no copy)."""
    pointer = llama_cpp.llama_get_logits_ith(ctx, output_index)
    address = ctypes.cast(pointer, ctypes.c_void_p).value
    if address is None:
        raise RuntimeError(f"llama.cpp has no logits for output {output_index}")
    view = _ROW_VIEWS.get(address)
    if view is None or view.shape[0] != n_vocab:
        if len(_ROW_VIEWS) >= _ROW_VIEWS_MAX:
            _ROW_VIEWS.clear()
        view = np.ctypeslib.as_array(pointer, shape=(n_vocab,))
        _ROW_VIEWS[address] = view
    return view


def grammar_compiles(vocab: Any, grammar: str) -> bool:
    """Whether llama.cpp accepts a GBNF grammar (it returns NULL when it does not)."""
    try:
        encoded = grammar.encode()
    except UnicodeEncodeError:
        return False
    sampler = llama_cpp.llama_sampler_init_grammar(vocab, encoded, b"root")
    if not sampler:
        return False
    llama_cpp.llama_sampler_free(sampler)
    return True


def sampler_for(params: GenerationParams, model: LlamaModel, repeat_limit: int) -> SamplerChain:
    """A request's chain on a loaded model; a grammar's also heals lone spaces and, with
    `repeat_limit` > 0, keeps its arrays from repeating one item."""
    grammar = params.grammar is not None
    merges = model.whitespace_merges() if grammar else None
    sampler = SamplerChain(params, model.n_vocab, model.eog_tokens, model.vocab, merges)
    if grammar and repeat_limit > 0:
        sampler.watch_repeats(RepeatedItems(repeat_limit), model.piece)
    return sampler


class SamplerChain:
    """Owns one llama_sampler chain (and grammar); free() must be called exactly once."""

    def __init__(
        self,
        params: GenerationParams,
        n_vocab: int,
        eog_tokens: tuple[int, ...],
        vocab: Any = None,
        merges: WhitespaceMerges | None = None,
    ) -> None:
        chain = llama_cpp.llama_sampler_chain_init(llama_cpp.llama_sampler_chain_default_params())
        if not chain:
            raise MemoryError("llama_sampler_chain_init failed")
        self._chain: Any = chain
        self._grammar: Any = None
        self._n_vocab = n_vocab
        self._merges = merges
        # A grammar's output, read for arrays that repeat one item (watch_repeats()).
        self._repeats: RepeatedItems | None = None
        self._piece: Callable[[int], bytes] = bytes
        self._last_piece: tuple[int, bytes] = (-1, b"")
        # After a whitespace token with merges: it and the logits it was chosen from.
        self._after_space: tuple[int, np.ndarray[Any, np.dtype[np.float32]]] | None = None
        # Plain greedy (no penalties, no grammar) is an argmax: numpy does it on the
        # logits in place, where llama_sampler_sample first copies the whole vocabulary
        # into a candidate array (about 0.1 ms a token, serial time between decodes).
        penalties = (
            params.frequency_penalty or params.presence_penalty or params.repeat_penalty != 1.0
        ) and params.penalty_last_n != 0
        self._greedy = params.temperature <= 0.0
        self._argmax_only = (
            self._greedy and not penalties and params.grammar is None and not params.logit_bias
        )
        # With a grammar, the same argmax picks the first token (the chain is [greedy]).
        self._grammar_argmax = self._greedy and not penalties and not params.logit_bias
        self._banned = np.array(eog_tokens if params.ignore_eos else (), dtype=np.int64)
        self._banned_ids = frozenset(self._banned.tolist())  # `in` on the array: ~50 us
        if params.logit_bias:  # ids checked against the vocabulary (engine/prompt.py)
            self._add(self._logit_bias(n_vocab, params.logit_bias))
        if params.ignore_eos and eog_tokens:
            self._add(self._logit_bias(n_vocab, [(t, -float("inf")) for t in eog_tokens]))
        if penalties:
            self._add(
                llama_cpp.llama_sampler_init_penalties(
                    n_vocab,
                    params.penalty_last_n,
                    params.repeat_penalty,
                    params.frequency_penalty,
                    params.presence_penalty,
                )
            )
        if params.temperature <= 0.0:
            self._add(llama_cpp.llama_sampler_init_greedy())
        else:
            self._add(llama_cpp.llama_sampler_init_top_k(params.top_k))
            self._add(llama_cpp.llama_sampler_init_top_p(params.top_p, 1))
            self._add(llama_cpp.llama_sampler_init_temp(params.temperature))
            seed = params.seed if params.seed is not None else random.getrandbits(32)
            self._add(llama_cpp.llama_sampler_init_dist(seed & 0xFFFFFFFF))
        if params.grammar is not None:
            grammar = llama_cpp.llama_sampler_init_grammar(vocab, params.grammar.encode(), b"root")
            if not grammar:
                self.free()
                raise ValueError("llama.cpp could not parse the grammar")
            self._grammar = grammar
            self._candidates = np.zeros(n_vocab, dtype=_TOKEN_DATA)
            self._ids = np.arange(n_vocab, dtype=np.int32)
            self._one = (llama_cpp.llama_token_data * 1)()

    def watch_repeats(self, repeats: RepeatedItems, piece: Callable[[int], bytes]) -> None:
        """Keeps a grammar's arrays from repeating one item (`piece`: a token's bytes)."""
        if self._grammar is not None:
            self._repeats, self._piece = repeats, piece

    def _add(self, sampler: Any) -> None:
        if not sampler:
            raise MemoryError("llama.cpp could not create a sampler")
        llama_cpp.llama_sampler_chain_add(self._chain, sampler)

    @staticmethod
    def _logit_bias(n_vocab: int, pairs: Sequence[tuple[int, float]]) -> Any:
        """llama.cpp's logit-bias sampler: each (token, value) adds value to the logit."""
        biases = (llama_cpp.llama_logit_bias * len(pairs))()
        for i, (token, bias) in enumerate(pairs):
            biases[i].token = llama_cpp.llama_token(token)
            biases[i].bias = bias
        return llama_cpp.llama_sampler_init_logit_bias(
            n_vocab, len(pairs), ctypes.cast(biases, llama_cpp.llama_logit_bias_p)
        )

    def sample(self, ctx: Any, output_index: int) -> int:
        """Samples from the given output row and records the token in the chain's state."""
        if self._argmax_only:
            return self._argmax(ctx, output_index)
        if self._grammar is None:
            return int(llama_cpp.llama_sampler_sample(self._chain, ctx, output_index))
        return self._sample_with_grammar(ctx, output_index)

    def _argmax(self, ctx: Any, output_index: int) -> int:
        """What the chain [end-of-generation ban, greedy] picks: the first highest logit."""
        logits = logits_row(ctx, output_index, self._n_vocab)
        token = int(logits.argmax())
        if token in self._banned_ids:
            masked = logits.copy()
            masked[self._banned] = -np.inf
            token = int(masked.argmax())
        return token

    def _candidate_array(self, ctx: Any, output_index: int) -> Any:
        logits = logits_row(ctx, output_index, self._n_vocab)
        cand = self._candidates
        cand["id"] = self._ids
        cand["logit"] = logits
        cand["p"] = 0.0
        data = cand.ctypes.data_as(llama_cpp.llama_token_data_p)
        return llama_cpp.llama_token_data_array(data, self._n_vocab, -1, False)

    def _grammar_allows(self, token: int) -> bool:
        one = self._one
        one[0].id = llama_cpp.llama_token(token)
        one[0].logit, one[0].p = 1.0, 0.0
        single = llama_cpp.llama_token_data_array(one, 1, -1, False)
        llama_cpp.llama_sampler_apply(self._grammar, ctypes.byref(single))
        return not math.isinf(one[0].logit)

    def _sample_with_grammar(self, ctx: Any, output_index: int) -> int:
        token = self.choose(ctx, output_index)
        self.accept(token)
        return token

    def choose(self, ctx: Any, output_index: int) -> int:
        """A token the grammar allows, not yet recorded: accept() it or force() another."""
        assert self._grammar is not None, "choose() is for grammar sequences"
        if self._grammar_argmax:
            token = self._argmax(ctx, output_index)
        else:
            arr = self._candidate_array(ctx, output_index)
            llama_cpp.llama_sampler_apply(self._chain, ctypes.byref(arr))
            token = int(arr.data[arr.selected].id)
        after_space, self._after_space = self._after_space, None
        if not self._grammar_allows(token):
            healed = self._heal(after_space) if after_space is not None else None
            if healed is not None:
                return healed
            best = self._greedy_allowed(ctx, output_index) if self._greedy else None
            token = best if best is not None else self._resample(ctx, output_index)
        if self._repeats is not None and self._repeats_item(token):
            token = self._instead_of_repeat(ctx, output_index, token)
        if self._merges is not None and self._merges.get(token) is not None:
            self._after_space = (token, logits_row(ctx, output_index, self._n_vocab).copy())
        return token

    def _repeats_item(self, token: int) -> bool:
        assert self._repeats is not None
        self._last_piece = (token, self._piece(token))
        return self._repeats.would_repeat(self._last_piece[1])

    def _instead_of_repeat(self, ctx: Any, output_index: int, token: int) -> int:
        """The pick the grammar allows once tokens that start another repeated item are
        set aside; the first pick when nothing else is allowed (or found among a few)."""
        aside = [token]
        for _ in range(_MAX_SET_ASIDE):
            pick = self._greedy_allowed(ctx, output_index, aside) if self._greedy else None
            if pick is None:
                pick = self._resample_without(ctx, output_index, aside)
            if pick is None:
                return token
            if not self._repeats_item(pick):
                return pick
            aside.append(pick)
        return token

    def _greedy_allowed(self, ctx: Any, output_index: int, aside: Sequence[int] = ()) -> int | None:
        """What greedy takes once the grammar filtered the whole vocabulary (its first
        highest logit among the allowed tokens), found among the highest logits alone:
        filtering every token costs about 2.7 ms, most of a decode step. None: no allowed
        token there (the caller filters them all)."""
        if self._grammar_argmax:  # the logits as the chain sees them: the end-token ban only
            logits = logits_row(ctx, output_index, self._n_vocab)
            if len(self._banned):
                logits = logits.copy()
                logits[self._banned] = -np.inf
        else:  # the chain's penalties and biases, applied in place by choose()'s first pick
            logits = self._candidates["logit"]
        if aside:
            logits = logits.copy()
            logits[list(aside)] = -np.inf
        for top in _TOPS:
            edge = np.partition(logits, -top)[-top]
            if not np.isfinite(edge):
                return None
            ids = np.flatnonzero(logits >= edge)  # ties at the edge included
            ids = ids[np.lexsort((ids, -logits[ids]))]  # highest first, then the lowest id
            cand = np.zeros(len(ids), dtype=_TOKEN_DATA)
            cand["id"], cand["logit"] = ids, logits[ids]
            arr = llama_cpp.llama_token_data_array(
                cand.ctypes.data_as(llama_cpp.llama_token_data_p), len(cand), -1, False
            )
            llama_cpp.llama_sampler_apply(self._grammar, ctypes.byref(arr))
            allowed = np.flatnonzero(~np.isinf(cand["logit"]))
            if len(allowed):
                return int(ids[allowed[0]])
        return None

    def _resample(self, ctx: Any, output_index: int) -> int:
        """The chain's pick once the grammar filtered every candidate."""
        arr = self._candidate_array(ctx, output_index)
        llama_cpp.llama_sampler_apply(self._grammar, ctypes.byref(arr))
        llama_cpp.llama_sampler_apply(self._chain, ctypes.byref(arr))
        return int(arr.data[arr.selected].id)

    def _resample_without(self, ctx: Any, output_index: int, aside: list[int]) -> int | None:
        """The chain's pick among the tokens the grammar allows but those set aside (None:
        there are none)."""
        arr = self._candidate_array(ctx, output_index)
        llama_cpp.llama_sampler_apply(self._grammar, ctypes.byref(arr))
        logits = self._candidates["logit"]  # still in id order: the grammar does not sort
        logits[aside] = -np.inf
        if not np.isfinite(logits).any():
            return None
        llama_cpp.llama_sampler_apply(self._chain, ctypes.byref(arr))
        return int(arr.data[arr.selected].id)

    def _heal(self, after_space: tuple[int, np.ndarray[Any, np.dtype[np.float32]]]) -> int | None:
        """After a lone whitespace W, when the grammar allows next only characters the
        tokenizer writes merged with W: the rest r of the allowed merged token W+r the model
        rated best where it took W (the text W+r, as that token would have written it).
        None: not that trap, or no such token allowed."""
        assert self._merges is not None
        space, logits = after_space
        merge = self._merges.get(space)
        assert merge is not None
        probes = self._allowed_of(self._merges.probe_tokens)
        allowed = {c for c, ok in zip(self._merges.probe_chars, probes, strict=True) if ok}
        if not allowed or not allowed <= merge.next_chars:
            return None
        cand = np.zeros(len(merge.rests), dtype=_TOKEN_DATA)
        cand["id"], cand["logit"] = merge.rests, logits[merge.merged]
        arr = llama_cpp.llama_token_data_array(
            cand.ctypes.data_as(llama_cpp.llama_token_data_p), len(cand), -1, False
        )
        llama_cpp.llama_sampler_apply(self._grammar, ctypes.byref(arr))
        if np.isinf(cand["logit"]).all():
            return None
        llama_cpp.llama_sampler_apply(self._chain, ctypes.byref(arr))
        return int(arr.data[arr.selected].id)

    def _allowed_of(self, ids: np.ndarray[Any, Any]) -> list[bool]:
        """Which of the tokens the grammar allows where it stands."""
        cand = np.zeros(len(ids), dtype=_TOKEN_DATA)
        cand["id"], cand["logit"] = ids, 0.0
        arr = llama_cpp.llama_token_data_array(
            cand.ctypes.data_as(llama_cpp.llama_token_data_p), len(cand), -1, False
        )
        llama_cpp.llama_sampler_apply(self._grammar, ctypes.byref(arr))
        return [not math.isinf(x) for x in cand["logit"].tolist()]

    def accept(self, token: int) -> None:
        if self._grammar is not None:
            llama_cpp.llama_sampler_accept(self._grammar, token)
        if self._repeats is not None:  # the piece choose() looked at, mostly
            last = self._last_piece
            self._repeats.take(last[1] if last[0] == token else self._piece(token))
        llama_cpp.llama_sampler_accept(self._chain, token)

    def force(self, token: int) -> bool:
        """Records a token chosen by the engine (a forced closing) if the grammar allows it."""
        if self._grammar is not None and not self._grammar_allows(token):
            return False
        self.accept(token)
        return True

    def free(self) -> None:
        if self._grammar:
            llama_cpp.llama_sampler_free(self._grammar)
            self._grammar = None
        if self._chain:
            llama_cpp.llama_sampler_free(self._chain)
            self._chain = None
