"""Hostile GGUF files for the security tests: a copy of the default model with a chat
template of our choosing (written with the `gguf` package), and broken headers."""

from __future__ import annotations

import struct
from pathlib import Path

import gguf
from gguf.scripts.gguf_new_metadata import MetadataDetails, copy_with_new_metadata

GGUF_MAGIC = b"GGUF"
_STRING, _ARRAY, _UINT8 = 8, 9, 0


def with_chat_template(source: Path, target: Path, template: str) -> Path:
    """The model at `source`, byte for byte the same tensors, with a new chat template."""
    reader = gguf.GGUFReader(source)
    arch = reader.get_field(gguf.Keys.General.ARCHITECTURE)
    assert arch is not None
    writer = gguf.GGUFWriter(target, arch=str(arch.contents()), endianess=reader.endianess)
    alignment = reader.get_field(gguf.Keys.General.ALIGNMENT)
    if alignment is not None:
        writer.data_alignment = int(alignment.contents())
    new = {gguf.Keys.Tokenizer.CHAT_TEMPLATE: MetadataDetails(gguf.GGUFValueType.STRING, template)}
    copy_with_new_metadata(reader, writer, new, [])
    return target


def _header(n_tensors: int, n_kv: int) -> bytes:
    return GGUF_MAGIC + struct.pack("<IQQ", 3, n_tensors, n_kv)


def _string(text: bytes, declared: int | None = None) -> bytes:
    return struct.pack("<Q", len(text) if declared is None else declared) + text


def crafted_files(source: Path, folder: Path) -> dict[str, Path]:
    """Broken or hostile GGUF files, by name."""
    head = source.read_bytes()[: 8 << 20]
    variants = {
        "not a gguf file": b"\x7fELF" + bytes(range(256)) * 4,
        "empty": b"",
        "magic only": GGUF_MAGIC,
        "header cut at 100 bytes": head[:100],
        "tensor data cut off": head,
        "2**62 metadata entries": _header(0, 2**62),
        "2**62 tensors": _header(2**62, 0),
        "key of 2**60 bytes": _header(0, 1) + _string(b"general.name", 2**60),
        "array of 2**40 items": _header(0, 1)
        + _string(b"general.tags")
        + struct.pack("<IIQ", _ARRAY, _UINT8, 2**40),
        "string value of 2**50 bytes": _header(0, 1)
        + _string(b"general.name")
        + struct.pack("<I", _STRING)
        + _string(b"x", 2**50),
    }
    paths = {}
    for i, (name, data) in enumerate(variants.items()):
        path = folder / f"crafted-{i}.gguf"
        path.write_bytes(data)
        paths[name] = path
    return paths
