"""The GPU devices llama.cpp can offload to, read from ggml's backend device registry.

llama-cpp-python does not bind ggml's device functions, so they are called through
ctypes on the libggml it ships (already loaded by llama_cpp in the engine process).
The enum values are those of the pinned build's ggml-backend.h.
"""

from __future__ import annotations

import ctypes
import logging
from pathlib import Path
from typing import Literal

from browser_llm.core.types import GpuDevice

__all__ = ["gpu_devices"]

logger = logging.getLogger(__name__)

# enum ggml_backend_dev_type: CPU, GPU (dedicated memory), IGPU (host memory), ACCEL, META
_KINDS: dict[int, Literal["gpu", "igpu"]] = {1: "gpu", 2: "igpu"}


def _libggml() -> ctypes.CDLL:
    import llama_cpp  # the engine process only: the server never loads llama.cpp

    lib_dir = Path(llama_cpp.__file__).parent / "lib"
    lib = ctypes.CDLL(str(lib_dir / "libggml.so"))
    lib.ggml_backend_dev_count.restype = ctypes.c_size_t
    lib.ggml_backend_dev_get.argtypes = [ctypes.c_size_t]
    lib.ggml_backend_dev_get.restype = ctypes.c_void_p
    for name in ("ggml_backend_dev_name", "ggml_backend_dev_description"):
        getattr(lib, name).argtypes = [ctypes.c_void_p]
        getattr(lib, name).restype = ctypes.c_char_p
    lib.ggml_backend_dev_type.argtypes = [ctypes.c_void_p]
    lib.ggml_backend_dev_type.restype = ctypes.c_int
    lib.ggml_backend_dev_memory.argtypes = [
        ctypes.c_void_p,
        ctypes.POINTER(ctypes.c_size_t),
        ctypes.POINTER(ctypes.c_size_t),
    ]
    lib.ggml_backend_dev_memory.restype = None
    return lib


def gpu_devices() -> tuple[GpuDevice, ...]:
    """Every GPU device ggml registered (none on a CPU-only build), with its memory."""
    try:
        lib = _libggml()
    except OSError as exc:  # a build whose libraries are laid out otherwise
        logger.warning("cannot read GPU devices from libggml: %s", exc)
        return ()
    found = []
    for index in range(lib.ggml_backend_dev_count()):
        dev = lib.ggml_backend_dev_get(index)
        kind = _KINDS.get(lib.ggml_backend_dev_type(dev))
        if not dev or kind is None:
            continue
        free, total = ctypes.c_size_t(0), ctypes.c_size_t(0)
        lib.ggml_backend_dev_memory(dev, ctypes.byref(free), ctypes.byref(total))
        found.append(
            GpuDevice(
                name=(lib.ggml_backend_dev_name(dev) or b"").decode(errors="replace"),
                description=(lib.ggml_backend_dev_description(dev) or b"").decode(errors="replace"),
                kind=kind,
                memory_total_bytes=int(total.value),
                memory_free_bytes=int(free.value),
            )
        )
    return tuple(found)
