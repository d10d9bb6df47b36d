"""What the server reads from a GGUF header besides the check: the metadata Ollama's
/api/show reports, and the chat template with its special-token texts.

Both walk the file with the one bounded reader (gguf.py), so memory stays bounded
whatever the file claims.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from browser_llm.models.gguf import (
    ARRAY,
    SCALAR_FORMATS,
    STRING,
    SUPPORTED_VERSIONS,
    GgufReader,
)

__all__ = ["GgufHeader", "ModelFileInfo", "read_gguf_header", "read_model_info"]

_MAX_SHOWN_STRING = 4096  # longer strings (other than the template) are left out
_TEMPLATE = "tokenizer.chat_template"
_TOKENS = "tokenizer.ggml.tokens"
_BOS, _EOS = "tokenizer.ggml.bos_token_id", "tokenizer.ggml.eos_token_id"
_HEADER_KEYS = {_TEMPLATE, _BOS, _EOS, "tokenizer.ggml.add_bos_token", "tokenizer.ggml.model"}
_HEADER_KEYS.add("general.name")


@dataclass(frozen=True)
class ModelFileInfo:
    metadata: dict[str, Any] = field(default_factory=dict)
    chat_template: str | None = None

    @property
    def architecture(self) -> str | None:
        value = self.metadata.get("general.architecture")
        return value if isinstance(value, str) else None


@dataclass(frozen=True)
class GgufHeader:
    """What rendering prompts without llama.cpp needs (the browser engine, tool formats,
    the cluster's routing key)."""

    chat_template: str | None
    bos_text: str
    eos_text: str
    add_bos: bool
    name: str


def _value(r: GgufReader, vtype: int, key: str) -> tuple[bool, Any]:
    """(kept, value) of one metadata value; arrays and long strings are skipped."""
    if vtype in SCALAR_FORMATS:
        value = r.scalar(vtype)
        return not (isinstance(value, float) and not math.isfinite(value)), value  # JSON-safe
    if vtype == STRING:
        n = r.string_len(f"string value of '{key}'")
        if n > _MAX_SHOWN_STRING and key != _TEMPLATE:
            r.skip(n)
            return False, None
        return True, r.read(n).decode("utf-8", errors="replace")
    r.skip_value(vtype, key)
    return vtype == ARRAY, []


def read_model_info(path: Path | str) -> ModelFileInfo:
    """The metadata of a GGUF file; InvalidGGUFError if the header is not sound."""
    with GgufReader.open(path) as r:
        _, _, kv_count = r.preamble(SUPPORTED_VERSIONS)
        metadata: dict[str, Any] = {}
        for _ in range(kv_count):
            key = r.string("metadata key", r.limits.max_key_bytes)
            kept, value = _value(r, r.u32(), key)
            if kept:
                metadata[key] = value
    template = metadata.pop(_TEMPLATE, None)
    return ModelFileInfo(metadata, template if isinstance(template, str) else None)


def _token_texts(r: GgufReader, count: int, wanted: set[int]) -> dict[int, str]:
    """Reads the token list up to the last wanted id, keeping only the wanted entries."""
    found: dict[int, str] = {}
    for i in range(min(count, max(wanted) + 1)):
        n = r.string_len(f"string in array '{_TOKENS}'")
        if i in wanted:
            found[i] = r.read(n).decode("utf-8", errors="replace")
        else:
            r.skip(n)
    return found


def read_gguf_header(path: Path | str) -> GgufHeader:
    """Chat template, BOS/EOS texts and add-BOS flag; InvalidGGUFError if malformed."""
    values: dict[str, Any] = {}
    tokens_at, tokens_count = None, 0  # where tokenizer.ggml.tokens' items start
    with GgufReader.open(path) as r:
        _, _, kv_count = r.preamble(SUPPORTED_VERSIONS)
        for _ in range(kv_count):
            key = r.string("metadata key", r.limits.max_key_bytes)
            vtype = r.u32()
            if key == _TOKENS and vtype == ARRAY:
                item_type, tokens_count = r.array_header(key)
                if item_type != STRING:
                    raise r.fail(f"array '{key}' does not hold strings")
                tokens_at = r.tell()
                r.skip_value_items(STRING, tokens_count, key)
            elif key in _HEADER_KEYS and (vtype == STRING or vtype in SCALAR_FORMATS):
                values[key] = _value(r, vtype, key)[1]
            else:
                r.skip_value(vtype, key)
        ids = {int(values[k]) for k in (_BOS, _EOS) if isinstance(values.get(k), int)}
        texts: dict[int, str] = {}
        if tokens_at is not None and ids:
            r.seek(tokens_at)
            texts = _token_texts(r, tokens_count, ids)
    template = values.get(_TEMPLATE)
    spm = values.get("tokenizer.ggml.model") == "llama"
    bos_id, eos_id = values.get(_BOS), values.get(_EOS)
    return GgufHeader(
        chat_template=template if isinstance(template, str) and template else None,
        bos_text=texts.get(bos_id, "") if isinstance(bos_id, int) else "",
        eos_text=texts.get(eos_id, "") if isinstance(eos_id, int) else "",
        # Without the key, llama.cpp adds BOS for SentencePiece ("llama") vocabularies only.
        add_bos=bool(values.get("tokenizer.ggml.add_bos_token", spm)),
        name=str(values.get("general.name", "")),
    )
