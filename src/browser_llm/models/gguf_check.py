"""A bounded-memory GGUF header check, run before llama.cpp ever opens a file.

llama.cpp's loader trusts much of what a file says. This walks the header
(magic, version, key/value metadata, tensor table) reading only fixed-size
fields and seeking past string and array bodies, so a crafted file cannot make
it allocate: memory stays O(1) whatever the file claims. It rejects wrong
magic, unsupported versions, truncation, absurd counts and lengths, unknown
value or tensor types, and tensors whose data would lie outside the file.

Public: ``check_gguf(path) -> GGUFInfo``, raising ``InvalidGGUFError``.
"""

from __future__ import annotations

import io
import os
import stat
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from browser_llm.core.errors import ModelLoadFailedError

__all__ = ["LIMITS", "GGUFInfo", "InvalidGGUFError", "check_gguf"]

MAGIC = b"GGUF"
SUPPORTED_VERSIONS = (2, 3)


@dataclass(frozen=True)
class Limits:
    max_tensors: int = 65_536
    max_kv: int = 65_536
    max_key_bytes: int = 1_024
    max_string_bytes: int = 16 * 1024 * 1024  # chat templates are tens of KB
    max_array_items: int = 16 * 1024 * 1024  # vocabularies are up to ~260k tokens
    max_tensor_name_bytes: int = 64  # GGML_MAX_NAME
    max_dims: int = 4  # GGML_MAX_DIMS
    max_alignment: int = 1 << 20


LIMITS = Limits()

# GGUF metadata value types -> fixed size in bytes (8 string, 9 array are variable).
_FIXED = {0: 1, 1: 1, 2: 2, 3: 2, 4: 4, 5: 4, 6: 4, 7: 1, 10: 8, 11: 8, 12: 8}
_STRING, _ARRAY, _UINT32 = 8, 9, 4

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


class InvalidGGUFError(ModelLoadFailedError):
    """The file is not a GGUF llama.cpp should be given. details.problem says why."""

    def __init__(self, problem: str, path: Path | str) -> None:
        super().__init__(
            f"not a valid GGUF model file: {problem}",
            {"reason": "invalid_gguf", "problem": problem, "file": Path(path).name},
        )
        self.problem = problem


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


class _Reader:
    def __init__(self, f: BinaryIO, size: int, path: Path) -> None:
        self._f = f
        self.size = size
        self._path = path

    def fail(self, problem: str) -> InvalidGGUFError:
        return InvalidGGUFError(problem, self._path)

    def read(self, n: int) -> bytes:
        data = self._f.read(n)
        if len(data) != n:
            raise self.fail("truncated (header ends before its declared content)")
        return data

    def skip(self, n: int) -> None:
        if n < 0 or self._f.tell() + n > self.size:
            raise self.fail("truncated (a value runs past the end of the file)")
        self._f.seek(n, io.SEEK_CUR)

    def u32(self) -> int:
        return int(struct.unpack("<I", self.read(4))[0])

    def u64(self) -> int:
        return int(struct.unpack("<Q", self.read(8))[0])

    def i64(self) -> int:
        return int(struct.unpack("<q", self.read(8))[0])

    def tell(self) -> int:
        return self._f.tell()

    def string_len(self, limit: int, what: str) -> int:
        n = self.u64()
        if n > limit:
            raise self.fail(f"{what} is {n} bytes (limit {limit})")
        return n

    def string(self, limit: int, what: str) -> str:
        return self.read(self.string_len(limit, what)).decode("utf-8", errors="replace")


def _open_regular(path: Path) -> tuple[BinaryIO, int]:
    # O_NONBLOCK: opening a FIFO must not hang; fstat then rejects it.
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    except OSError as exc:
        raise InvalidGGUFError(f"cannot open the file ({exc.strerror})", path) from exc
    st = os.fstat(fd)
    if not stat.S_ISREG(st.st_mode):
        os.close(fd)
        raise InvalidGGUFError("not a regular file", path)
    os.set_blocking(fd, True)
    return os.fdopen(fd, "rb", buffering=1 << 16), st.st_size


def _skip_value(r: _Reader, vtype: int, key: str, limits: Limits) -> None:
    if vtype in _FIXED:
        r.skip(_FIXED[vtype])
    elif vtype == _STRING:
        r.skip(r.string_len(limits.max_string_bytes, f"string value of '{key}'"))
    elif vtype == _ARRAY:
        item_type = r.u32()
        count = r.u64()
        if count > limits.max_array_items:
            raise r.fail(f"array '{key}' has {count} items (limit {limits.max_array_items})")
        if item_type in _FIXED:
            r.skip(count * _FIXED[item_type])
        elif item_type == _STRING:
            for _ in range(count):
                r.skip(r.string_len(limits.max_string_bytes, f"string in array '{key}'"))
        else:  # nested arrays are not valid GGUF for llama.cpp
            raise r.fail(f"array '{key}' has unsupported item type {item_type}")
    else:
        raise r.fail(f"metadata '{key}' has unknown value type {vtype}")


def _tensor_bytes(r: _Reader, name: str, dims: list[int], ggml_type: int) -> int:
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


def _read_metadata(r: _Reader, kv_count: int, limits: Limits) -> tuple[dict[str, str], int, bool]:
    strings: dict[str, str] = {}
    alignment, has_template = 32, False
    for _ in range(kv_count):
        key = r.string(limits.max_key_bytes, "metadata key")
        if not key:
            raise r.fail("empty metadata key")
        vtype = r.u32()
        if key in _KEPT_STRINGS and vtype == _STRING:
            strings[key] = r.string(4096, f"'{key}'")
        elif key == "general.alignment" and vtype == _UINT32:
            alignment = r.u32()
            if alignment == 0 or alignment & (alignment - 1) or alignment > limits.max_alignment:
                raise r.fail(f"general.alignment {alignment} is not a sane power of two")
        else:
            has_template |= key.startswith("tokenizer.chat_template")
            _skip_value(r, vtype, key, limits)
    return strings, alignment, has_template


def _check_tensors(r: _Reader, tensor_count: int, alignment: int, limits: Limits) -> None:
    ends: list[tuple[str, int, int]] = []  # (name, offset, byte size); 24 bytes per tensor
    for _ in range(tensor_count):
        name = r.string(limits.max_tensor_name_bytes, "tensor name")
        n_dims = r.u32()
        if not 1 <= n_dims <= limits.max_dims:
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
    path = Path(path)
    f, size = _open_regular(path)
    with f:
        r = _Reader(f, size, path)
        if size < 24:
            raise r.fail("truncated (shorter than a GGUF header)")
        if r.read(4) != MAGIC:
            raise r.fail("wrong magic (not a GGUF file)")
        version = r.u32()
        if version not in SUPPORTED_VERSIONS:
            raise r.fail(f"unsupported GGUF version {version}")
        tensor_count, kv_count = r.u64(), r.u64()
        if tensor_count > limits.max_tensors:
            raise r.fail(f"{tensor_count} tensors (limit {limits.max_tensors})")
        if kv_count > limits.max_kv:
            raise r.fail(f"{kv_count} metadata entries (limit {limits.max_kv})")
        strings, alignment, has_template = _read_metadata(r, kv_count, limits)
        _check_tensors(r, tensor_count, alignment, limits)
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
