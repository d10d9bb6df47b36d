"""The one GGUF header reader: bounded reads of a file's header, whatever the file claims.

llama.cpp's loader trusts much of what a file says. Everything here reads fixed-size
fields and seeks past string and array bodies it does not keep, with limits on every
count and length, so a crafted header cannot make the server allocate. The header
check (gguf_check.py) and the metadata readers (gguf_info.py) walk files with it.
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

__all__ = [
    "ARRAY",
    "LIMITS",
    "MAGIC",
    "SCALAR_FORMATS",
    "STRING",
    "SUPPORTED_VERSIONS",
    "GgufReader",
    "InvalidGGUFError",
    "Limits",
]

MAGIC = b"GGUF"
SUPPORTED_VERSIONS = (2, 3)
STRING, ARRAY = 8, 9
# GGUF metadata value types -> struct format (8 string and 9 array are variable).
SCALAR_FORMATS = {0: "<B", 1: "<b", 2: "<H", 3: "<h", 4: "<I", 5: "<i", 6: "<f", 7: "<?"}
SCALAR_FORMATS.update({10: "<Q", 11: "<q", 12: "<d"})


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


class InvalidGGUFError(ModelLoadFailedError):
    """The file is not a GGUF llama.cpp should be given. details.problem says why."""

    def __init__(self, problem: str, path: Path | str) -> None:
        super().__init__(
            f"not a valid GGUF model file: {problem}",
            {"reason": "invalid_gguf", "problem": problem, "file": Path(path).name},
        )
        self.problem = problem


class GgufReader:
    """Reads one GGUF file front to back; every failure is an InvalidGGUFError."""

    def __init__(self, f: BinaryIO, size: int, path: Path, limits: Limits = LIMITS) -> None:
        self._f = f
        self.size = size
        self._path = path
        self.limits = limits

    @classmethod
    def open(cls, path: Path | str, limits: Limits = LIMITS) -> GgufReader:
        """A reader on a regular file (a FIFO or device is refused, never waited on)."""
        path = Path(path)
        try:  # O_NONBLOCK: opening a FIFO must not hang; fstat then rejects it.
            fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
        except OSError as exc:
            raise InvalidGGUFError(f"cannot open the file ({exc.strerror})", path) from exc
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            os.close(fd)
            raise InvalidGGUFError("not a regular file", path)
        os.set_blocking(fd, True)
        return cls(os.fdopen(fd, "rb", buffering=1 << 16), st.st_size, path, limits)

    def __enter__(self) -> GgufReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self._f.close()

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

    def seek(self, offset: int) -> None:
        self._f.seek(offset)

    def tell(self) -> int:
        return self._f.tell()

    def u32(self) -> int:
        return int(struct.unpack("<I", self.read(4))[0])

    def u64(self) -> int:
        return int(struct.unpack("<Q", self.read(8))[0])

    def i64(self) -> int:
        return int(struct.unpack("<q", self.read(8))[0])

    def scalar(self, vtype: int) -> object:
        fmt = SCALAR_FORMATS[vtype]
        return struct.unpack(fmt, self.read(struct.calcsize(fmt)))[0]

    def string_len(self, what: str, limit: int | None = None) -> int:
        n = self.u64()
        limit = self.limits.max_string_bytes if limit is None else limit
        if n > limit:
            raise self.fail(f"{what} is {n} bytes (limit {limit})")
        return n

    def string(self, what: str, limit: int | None = None) -> str:
        return self.read(self.string_len(what, limit)).decode("utf-8", errors="replace")

    def preamble(self, versions: tuple[int, ...]) -> tuple[int, int, int]:
        """(version, tensor count, metadata count), each checked, in the order of the file."""
        if self.read(4) != MAGIC:
            raise self.fail("wrong magic (not a GGUF file)")
        version = self.u32()
        if version not in versions:
            raise self.fail(f"unsupported GGUF version {version}")
        tensor_count, kv_count = self.u64(), self.u64()
        if tensor_count > self.limits.max_tensors:
            raise self.fail(f"{tensor_count} tensors (limit {self.limits.max_tensors})")
        if kv_count > self.limits.max_kv:
            raise self.fail(f"{kv_count} metadata entries (limit {self.limits.max_kv})")
        return version, tensor_count, kv_count

    def array_header(self, key: str) -> tuple[int, int]:
        """(item type, count) of an array value, the count bounded."""
        item_type, count = self.u32(), self.u64()
        if count > self.limits.max_array_items:
            raise self.fail(
                f"array '{key}' has {count} items (limit {self.limits.max_array_items})"
            )
        return item_type, count

    def skip_value(self, vtype: int, key: str) -> None:
        if vtype in SCALAR_FORMATS:
            self.skip(struct.calcsize(SCALAR_FORMATS[vtype]))
        elif vtype == STRING:
            self.skip(self.string_len(f"string value of '{key}'"))
        elif vtype == ARRAY:
            item_type, count = self.array_header(key)
            self.skip_value_items(item_type, count, key)
        else:
            raise self.fail(f"metadata '{key}' has unknown value type {vtype}")

    def skip_value_items(self, item_type: int, count: int, key: str) -> None:
        """Seeks past the items of an array whose header was just read."""
        if item_type in SCALAR_FORMATS:
            self.skip(count * struct.calcsize(SCALAR_FORMATS[item_type]))
        elif item_type == STRING:
            for _ in range(count):
                self.skip(self.string_len(f"string in array '{key}'"))
        else:  # nested arrays are not valid GGUF for llama.cpp
            raise self.fail(f"array '{key}' has unsupported item type {item_type}")
