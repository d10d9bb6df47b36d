"""Reads the few GGUF header fields the browser engine needs, without llama.cpp.

The browser engine renders chat templates on the server (so prompts are the
same as with the native engine) but has no llama.cpp model in this process:
the template and the BOS/EOS token texts come straight from the file header.
Reads are bounded: a hostile header cannot make this allocate much.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

__all__ = ["GgufHeader", "read_gguf_header"]

_MAGIC = b"GGUF"
_MAX_STRING = 8 * 1024 * 1024  # a chat template is a few KB; 8 MB is generous
_MAX_KEYS = 100_000
_MAX_ARRAY = 10_000_000
# GGUF value types -> struct format of the scalar ones.
_SCALARS = {0: "<B", 1: "<b", 2: "<H", 3: "<h", 4: "<I", 5: "<i", 6: "<f", 7: "<?"}
_SCALARS.update({10: "<Q", 11: "<q", 12: "<d"})
_STRING, _ARRAY = 8, 9
_WANTED_SCALARS = {
    "tokenizer.chat_template",
    "tokenizer.ggml.bos_token_id",
    "tokenizer.ggml.eos_token_id",
    "tokenizer.ggml.add_bos_token",
    "tokenizer.ggml.model",
    "general.name",
}


@dataclass(frozen=True)
class GgufHeader:
    chat_template: str | None
    bos_text: str
    eos_text: str
    add_bos: bool
    name: str


class _Reader:
    def __init__(self, f: BinaryIO) -> None:
        self.f = f

    def take(self, n: int) -> bytes:
        data = self.f.read(n)
        if len(data) != n:
            raise ValueError("GGUF header is truncated")
        return data

    def scalar(self, fmt: str) -> Any:
        return struct.unpack(fmt, self.take(struct.calcsize(fmt)))[0]

    def string(self, keep: bool = True) -> str:
        n = self.scalar("<Q")
        if n > _MAX_STRING:
            raise ValueError("GGUF string is implausibly long")
        if not keep:
            self.f.seek(n, 1)
            return ""
        return self.take(n).decode("utf-8", errors="replace")

    def skip_value(self, kind: int) -> None:
        if kind in _SCALARS:
            self.f.seek(struct.calcsize(_SCALARS[kind]), 1)
        elif kind == _STRING:
            self.string(keep=False)
        elif kind == _ARRAY:
            inner, count = self.scalar("<I"), self.scalar("<Q")
            if count > _MAX_ARRAY:
                raise ValueError("GGUF array is implausibly long")
            if inner in _SCALARS:
                self.f.seek(struct.calcsize(_SCALARS[inner]) * count, 1)
            else:
                for _ in range(count):
                    self.skip_value(inner)
        else:
            raise ValueError(f"unknown GGUF value type {kind}")


def _string_at(reader: _Reader, count: int, wanted: set[int]) -> dict[int, str]:
    """Reads a string array, keeping only the entries at the wanted indices."""
    found: dict[int, str] = {}
    for i in range(count):
        text = reader.string(keep=i in wanted)
        if i in wanted:
            found[i] = text
    return found


def read_gguf_header(path: Path) -> GgufHeader:
    """Chat template, BOS/EOS texts and add-BOS flag of a GGUF file; ValueError if malformed."""
    values: dict[str, Any] = {}
    tokens_at: int | None = None  # file offset of tokenizer.ggml.tokens' items
    tokens_count = 0
    with path.open("rb") as f:
        reader = _Reader(f)
        if reader.take(4) != _MAGIC:
            raise ValueError("not a GGUF file")
        version = reader.scalar("<I")
        if version < 2:
            raise ValueError(f"GGUF version {version} is not supported")
        reader.scalar("<Q")  # tensor count
        n_keys = reader.scalar("<Q")
        if n_keys > _MAX_KEYS:
            raise ValueError("GGUF header has implausibly many keys")
        for _ in range(n_keys):
            key = reader.string()
            kind = reader.scalar("<I")
            if key == "tokenizer.ggml.tokens" and kind == _ARRAY:
                inner, tokens_count = reader.scalar("<I"), reader.scalar("<Q")
                if inner != _STRING or tokens_count > _MAX_ARRAY:
                    raise ValueError("GGUF token list is malformed")
                tokens_at = f.tell()
                for _ in range(tokens_count):
                    reader.string(keep=False)
            elif key in _WANTED_SCALARS and kind == _STRING:
                values[key] = reader.string()
            elif key in _WANTED_SCALARS and kind in _SCALARS:
                values[key] = reader.scalar(_SCALARS[kind])
            else:
                reader.skip_value(kind)
        texts: dict[int, str] = {}
        ids = {
            int(values[k])
            for k in ("tokenizer.ggml.bos_token_id", "tokenizer.ggml.eos_token_id")
            if k in values
        }
        if tokens_at is not None and ids:
            f.seek(tokens_at)
            texts = _string_at(reader, min(tokens_count, max(ids) + 1), ids)
    bos_id = values.get("tokenizer.ggml.bos_token_id")
    eos_id = values.get("tokenizer.ggml.eos_token_id")
    template = values.get("tokenizer.chat_template")
    spm = values.get("tokenizer.ggml.model") == "llama"
    return GgufHeader(
        chat_template=template if isinstance(template, str) and template else None,
        bos_text=texts.get(int(bos_id), "") if bos_id is not None else "",
        eos_text=texts.get(int(eos_id), "") if eos_id is not None else "",
        # Without the key, llama.cpp adds BOS for SentencePiece ("llama") vocabularies only.
        add_bos=bool(values.get("tokenizer.ggml.add_bos_token", spm)),
        name=str(values.get("general.name", "")),
    )
