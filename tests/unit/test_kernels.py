"""The installed llama.cpp is the Makefile's build, with its patches."""

from __future__ import annotations

import ctypes
import importlib.util
import platform
from pathlib import Path

import numpy as np
import pytest

from browser_llm.engine.native.ggml.kernels import batch_invariant_attention


def test_the_build_rounds_a_lone_attention_row_as_in_a_batch() -> None:
    assert batch_invariant_attention()


def _ggml(name: str) -> ctypes.CDLL:
    spec = importlib.util.find_spec("llama_cpp")
    assert spec is not None and spec.submodule_search_locations
    return ctypes.CDLL(str(Path(next(iter(spec.submodule_search_locations))) / "lib" / name))


Q4_1, QK = 3, 32  # ggml_type GGML_TYPE_Q4_1; values per quant block
Q8_1_BLOCK_BYTES = 36  # two fp16 (scale, scaled sum) + 32 int8


@pytest.mark.skipif(platform.machine() != "x86_64", reason="the patched kernel is x86 (AVX2)")
@pytest.mark.parametrize("width", [576, 1536])
def test_q4_1_rows_against_several_columns_sum_bit_for_bit_as_one_at_a_time(width: int) -> None:
    """patches/llama-cpp-python/q4_1-rows-against-several-columns.patch: a token's sum is
    the same alone (ggml's one-column kernel) or beside others (the patched kernel)."""
    base, cpu = _ggml("libggml-base.so"), _ggml("libggml-cpu.so")
    base.ggml_row_size.restype = ctypes.c_size_t
    cpu.ggml_cpu_init()
    rng = np.random.default_rng(width)
    rows, columns = 19, 9
    weights = rng.uniform(-1, 1, (rows, width)).astype(np.float32)
    tokens = rng.uniform(-1, 1, (columns, width)).astype(np.float32)
    row_bytes = base.ggml_row_size(Q4_1, ctypes.c_int64(width))
    packed = ctypes.create_string_buffer(rows * row_bytes)
    base.ggml_quantize_chunk(
        Q4_1,
        weights.ctypes.data_as(ctypes.c_void_p),
        packed,
        ctypes.c_int64(0),
        ctypes.c_int64(rows),
        ctypes.c_int64(width),
        None,
    )
    column_bytes = width // QK * Q8_1_BLOCK_BYTES
    quantized = ctypes.create_string_buffer(columns * column_bytes)
    for c in range(columns):
        cpu.quantize_row_q8_1(
            tokens[c].ctypes.data_as(ctypes.c_void_p),
            ctypes.byref(quantized, c * column_bytes),
            ctypes.c_int64(width),
        )
    alone = np.zeros((columns, rows), np.float32)
    one = ctypes.c_float()
    for c in range(columns):
        for r in range(rows):
            cpu.ggml_vec_dot_q4_1_q8_1(
                width,
                ctypes.byref(one),
                ctypes.c_size_t(0),
                ctypes.byref(packed, r * row_bytes),
                ctypes.c_size_t(0),
                ctypes.byref(quantized, c * column_bytes),
                ctypes.c_size_t(0),
                1,
            )
            alone[c, r] = one.value
    for count in range(1, columns + 1):  # 1-4 columns and the remainders after groups of 4
        together = np.zeros((count, rows), np.float32)
        for r in range(rows):
            cpu.ggml_vec_dot_q4_1_q8_1_cols(
                width,
                together[:, r:].ctypes.data_as(ctypes.c_void_p),
                ctypes.c_size_t(rows),
                ctypes.byref(packed, r * row_bytes),
                quantized,
                ctypes.c_size_t(column_bytes),
                count,
            )
        assert together.view(np.uint32).tolist() == alone[:count].view(np.uint32).tolist(), count
    # and the sums are the products: close to the unquantized ones
    assert np.corrcoef(alone.ravel(), (tokens @ weights.T).ravel())[0, 1] > 0.99
