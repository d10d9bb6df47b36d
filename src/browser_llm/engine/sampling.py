"""Request parameters -> a llama.cpp sampler chain (one chain per sequence)."""

from __future__ import annotations

import ctypes
import random
from typing import Any

import llama_cpp

from browser_llm.core.types import GenerationParams

__all__ = ["SamplerChain"]

# Penalties look back over this many tokens, as llama.cpp's server does by default.
_PENALTY_LAST_N = 64


class SamplerChain:
    """Owns one llama_sampler chain; free() must be called exactly once."""

    def __init__(self, params: GenerationParams, n_vocab: int, eog_tokens: tuple[int, ...]) -> None:
        chain = llama_cpp.llama_sampler_chain_init(llama_cpp.llama_sampler_chain_default_params())
        if not chain:
            raise MemoryError("llama_sampler_chain_init failed")
        self._chain: Any = chain
        if params.ignore_eos and eog_tokens:
            self._add(self._eog_ban(n_vocab, eog_tokens))
        if params.frequency_penalty or params.presence_penalty:
            self._add(
                llama_cpp.llama_sampler_init_penalties(
                    n_vocab,
                    _PENALTY_LAST_N,
                    1.0,
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

    def _add(self, sampler: Any) -> None:
        if not sampler:
            raise MemoryError("llama.cpp could not create a sampler")
        llama_cpp.llama_sampler_chain_add(self._chain, sampler)

    @staticmethod
    def _eog_ban(n_vocab: int, eog_tokens: tuple[int, ...]) -> Any:
        biases = (llama_cpp.llama_logit_bias * len(eog_tokens))()
        for i, token in enumerate(eog_tokens):
            biases[i].token = llama_cpp.llama_token(token)
            biases[i].bias = -float("inf")
        return llama_cpp.llama_sampler_init_logit_bias(
            n_vocab, len(eog_tokens), ctypes.cast(biases, llama_cpp.llama_logit_bias_p)
        )

    def sample(self, ctx: Any, output_index: int) -> int:
        """Samples from the given output row and records the token in the chain's state."""
        return int(llama_cpp.llama_sampler_sample(self._chain, ctx, output_index))

    def free(self) -> None:
        if self._chain:
            llama_cpp.llama_sampler_free(self._chain)
            self._chain = None
