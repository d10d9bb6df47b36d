"""What the installed llama.cpp build's CPU kernels promise, read from the library."""

from __future__ import annotations

import ctypes
import functools
import sys
from pathlib import Path

import llama_cpp

__all__ = ["batch_invariant_attention"]

_CPU_LIBRARY = {"darwin": "libggml-cpu.dylib", "win32": "ggml-cpu.dll"}


@functools.cache
def batch_invariant_attention() -> bool:
    """Whether a lone attention row rounds as it does beside other rows. The Makefile's
    build has it (patches/llama-cpp-python/batch-invariant-attention.patch); another
    build splits a lone row's KV cells among the threads once a sequence passes 256
    cells, so its output then depends on what else is in the batch."""
    name = _CPU_LIBRARY.get(sys.platform, "libggml-cpu.so")
    try:
        library = ctypes.CDLL(str(Path(llama_cpp.__file__).parent / "lib" / name))
    except OSError:
        return False
    return hasattr(library, "ggml_cpu_batch_invariant_attention")
