"""A bounded-memory GGUF header check, run before llama.cpp ever opens a file.

It walks the header (magic, version, key/value metadata, tensor table) with the
bounded reader (gguf.py), so a crafted file cannot make it allocate: memory stays
O(1) whatever the file claims. It rejects wrong magic, unsupported versions,
truncation, absurd counts and lengths, unknown value or tensor types, and tensors
whose data would lie outside the file.

Public: ``check_gguf(path) -> GGUFInfo``, raising ``InvalidGGUFError``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from browser_llm.models.gguf import (
    LIMITS,
    STRING,
    SUPPORTED_VERSIONS,
    GgufReader,
    InvalidGGUFError,
    Limits,
)

__all__ = ["GGUFInfo", "InvalidGGUFError", "check_gguf"]

_UINT32 = 4

# ggml tensor types -> (elements per block, bytes per block), from ggml.h / ggml.c.
_GGML_TYPES = {
    0: (1, 4), 1: (1, 2), 2: (32, 18), 3: (32, 20), 6: (32, 22), 7: (32, 24),
    8: (32, 34), 9: (32, 36), 10: (256, 84), 11: (256, 110), 12: (256, 144),
    13: (256, 176), 14: (256, 210), 15: (256, 292), 16: (256, 66), 17: (256, 74),
    18: (256, 98), 19: (256, 50), 20: (32, 18), 21: (256, 110), 22: (256, 82),
    23: (256, 136), 24: (1, 1), 25: (1, 2), 26: (1, 4), 27: (1, 8), 28: (1, 8),
    29: (256, 56), 30: (1, 2), 34: (256, 54), 35: (256, 66), 39: (32, 17),
}  # fmt: skip

_KEPT_STRINGS = ("general.architecture", "general.name")


@dataclass(frozen=True)
class GGUFInfo:
    version: int
    tensor_count: int
    kv_count: int
    file_size: int
    architecture: str | None
    name: str | None
    has_chat_template: bool
    alignment: int


def _tensor_bytes(r: GgufReader, name: str, dims: list[int], ggml_type: int) -> int:
    if ggml_type not in _GGML_TYPES:
        raise r.fail(f"tensor '{name}' has unknown type {ggml_type}")
    block, type_size = _GGML_TYPES[ggml_type]
    if any(d < 0 for d in dims):
        raise r.fail(f"tensor '{name}' has a negative dimension")
    if dims[0] % block:
        raise r.fail(f"tensor '{name}' row is not a whole number of blocks")
    elements = 1
    for d in dims:
        elements *= d
    if elements > 1 << 62:
        raise r.fail(f"tensor '{name}' is absurdly large")
    return elements // block * type_size


def _read_metadata(r: GgufReader, kv_count: int) -> tuple[dict[str, str], int, bool]:
    strings: dict[str, str] = {}
    alignment, has_template = 32, False
    for _ in range(kv_count):
        key = r.string("metadata key", r.limits.max_key_bytes)
        if not key:
            raise r.fail("empty metadata key")
        vtype = r.u32()
        if key in _KEPT_STRINGS and vtype == STRING:
            strings[key] = r.string(f"'{key}'", 4096)
        elif key == "general.alignment" and vtype == _UINT32:
            alignment = r.u32()
            if alignment == 0 or alignment & (alignment - 1) or alignment > r.limits.max_alignment:
                raise r.fail(f"general.alignment {alignment} is not a sane power of two")
        else:
            has_template |= key.startswith("tokenizer.chat_template")
            r.skip_value(vtype, key)
    return strings, alignment, has_template


def _check_tensors(r: GgufReader, tensor_count: int, alignment: int) -> None:
    ends: list[tuple[str, int, int]] = []  # (name, offset, byte size); 24 bytes per tensor
    for _ in range(tensor_count):
        name = r.string("tensor name", r.limits.max_tensor_name_bytes)
        n_dims = r.u32()
        if not 1 <= n_dims <= r.limits.max_dims:
            raise r.fail(f"tensor '{name}' has {n_dims} dimensions")
        dims = [r.i64() for _ in range(n_dims)]
        ggml_type = r.u32()
        offset = r.u64()
        if offset % alignment:
            raise r.fail(f"tensor '{name}' data offset is not aligned")
        ends.append((name, offset, _tensor_bytes(r, name, dims, ggml_type)))
    data_start = -(-r.tell() // alignment) * alignment
    for name, offset, nbytes in ends:
        if data_start + offset + nbytes > r.size:
            raise r.fail(f"truncated: tensor '{name}' data lies past the end of the file")


def check_gguf(path: Path | str, limits: Limits = LIMITS) -> GGUFInfo:
    """Validates a GGUF file's header and tensor table; raises InvalidGGUFError."""
    with GgufReader.open(path, limits) as r:
        size = r.size
        if size < 24:
            raise r.fail("truncated (shorter than a GGUF header)")
        version, tensor_count, kv_count = r.preamble(SUPPORTED_VERSIONS)
        strings, alignment, has_template = _read_metadata(r, kv_count)
        _check_tensors(r, tensor_count, alignment)
    return GGUFInfo(
        version=version,
        tensor_count=tensor_count,
        kv_count=kv_count,
        file_size=size,
        architecture=strings.get("general.architecture"),
        name=strings.get("general.name"),
        has_chat_template=has_template,
        alignment=alignment,
    )
