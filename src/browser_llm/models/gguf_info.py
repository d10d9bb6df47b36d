"""A GGUF file's metadata as Ollama's /api/show reports it: every scalar and short string
key, arrays as empty lists (as Ollama does without `verbose`), and the chat template.

Reuses gguf_check's bounded reader, so memory stays bounded whatever the file claims.
"""

from __future__ import annotations

import math
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from browser_llm.models.gguf_check import (  # the same bounded reader as the check
    LIMITS,
    InvalidGGUFError,
    _open_regular,
    _Reader,
    _skip_value,
)

__all__ = ["ModelFileInfo", "read_model_info"]

_FORMATS = {0: "<B", 1: "<b", 2: "<H", 3: "<h", 4: "<I", 5: "<i", 6: "<f", 7: "<?"}
_FORMATS.update({10: "<Q", 11: "<q", 12: "<d"})
_STRING, _ARRAY = 8, 9
_MAX_SHOWN_STRING = 4096  # longer strings (other than the template) are left out
_TEMPLATE = "tokenizer.chat_template"


@dataclass(frozen=True)
class ModelFileInfo:
    metadata: dict[str, Any] = field(default_factory=dict)
    chat_template: str | None = None

    @property
    def architecture(self) -> str | None:
        value = self.metadata.get("general.architecture")
        return value if isinstance(value, str) else None


def _value(r: _Reader, vtype: int, key: str) -> tuple[bool, Any]:
    """(kept, value) of one metadata value; arrays and long strings are skipped."""
    if vtype in _FORMATS:
        fmt = _FORMATS[vtype]
        value = struct.unpack(fmt, r.read(struct.calcsize(fmt)))[0]
        return not (isinstance(value, float) and not math.isfinite(value)), value  # JSON-safe
    if vtype == _STRING:
        n = r.string_len(LIMITS.max_string_bytes, f"string value of '{key}'")
        if n > _MAX_SHOWN_STRING and key != _TEMPLATE:
            r.skip(n)
            return False, None
        return True, r.read(n).decode("utf-8", errors="replace")
    _skip_value(r, vtype, key, LIMITS)
    return vtype == _ARRAY, []


def read_model_info(path: Path | str) -> ModelFileInfo:
    """The metadata of a GGUF file; InvalidGGUFError if the header is not sound."""
    path = Path(path)
    f, size = _open_regular(path)
    with f:
        r = _Reader(f, size, path)
        if r.read(4) != b"GGUF":
            raise InvalidGGUFError("wrong magic (not a GGUF file)", path)
        r.u32()  # version: check_gguf ran before any model was served
        r.u64()  # tensor count
        kv_count = r.u64()
        if kv_count > LIMITS.max_kv:
            raise r.fail(f"{kv_count} metadata entries (limit {LIMITS.max_kv})")
        metadata: dict[str, Any] = {}
        for _ in range(kv_count):
            key = r.string(LIMITS.max_key_bytes, "metadata key")
            kept, value = _value(r, r.u32(), key)
            if kept:
                metadata[key] = value
    template = metadata.pop(_TEMPLATE, None)
    return ModelFileInfo(metadata, template if isinstance(template, str) else None)
