"""The GGUF header check: real files pass; every kind of malformed file is rejected."""

from __future__ import annotations

import os
import struct
from pathlib import Path

import pytest

from browser_llm.core.errors import ModelLoadFailedError
from browser_llm.models.gguf_check import InvalidGGUFError, check_gguf
from tests.modelfiles import gguf, kv_str, kv_u32, smollm2_path, tensor

ARCH = kv_str("general.architecture", "llama")


def write(tmp_path: Path, data: bytes, name: str = "m.gguf") -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


def problem(path: Path) -> str:
    with pytest.raises(InvalidGGUFError) as err:
        check_gguf(path)
    assert isinstance(err.value, ModelLoadFailedError)  # MODEL_LOAD_FAILED to API callers
    assert err.value.details is not None and err.value.details["reason"] == "invalid_gguf"
    return err.value.problem


def test_the_packaged_model_passes() -> None:
    info = check_gguf(smollm2_path())
    assert info.architecture == "llama"
    assert info.has_chat_template
    assert info.tensor_count > 100
    assert info.file_size == smollm2_path().stat().st_size


def test_a_small_well_formed_file_passes(tmp_path: Path) -> None:
    data = gguf([ARCH, kv_u32("general.alignment", 32)], [tensor("t", [8])], data=b"\0" * 32)
    info = check_gguf(write(tmp_path, data))
    assert (info.version, info.tensor_count, info.kv_count) == (3, 1, 2)


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (b"", "truncated"),
        (b"GGML" + b"\0" * 40, "wrong magic"),
        (b"GGUF" + struct.pack("<IQQ", 1, 0, 0), "unsupported GGUF version 1"),
        (b"GGUF" + struct.pack("<IQQ", 99, 0, 0), "unsupported GGUF version 99"),
        (gguf([], n_tensors=10**12), "tensors (limit"),
        (gguf([], n_kv=10**9), "metadata entries (limit"),
        (gguf([ARCH], n_kv=2).rstrip(b"\0"), "truncated"),
        (gguf([kv_str("", "x")]), "empty metadata key"),
        (gguf([ARCH, kv_str("general.name", "x")]).rstrip(b"\0")[:-1], "truncated"),
        # Lengths that claim a terabyte: refused without reading or allocating.
        (
            b"GGUF" + struct.pack("<IQQ", 3, 0, 1) + struct.pack("<Q", 1 << 40) + b"k",
            "metadata key is",
        ),
        (
            b"GGUF"
            + struct.pack("<IQQ", 3, 0, 1)
            + struct.pack("<Q", 1)
            + b"k"
            + struct.pack("<I", 8)
            + struct.pack("<Q", 1 << 40),
            "string value of 'k' is",
        ),
        (
            b"GGUF"
            + struct.pack("<IQQ", 3, 0, 1)
            + struct.pack("<Q", 1)
            + b"a"
            + struct.pack("<IIQ", 9, 8, 1 << 40),
            "array 'a' has",
        ),
        (
            b"GGUF"
            + struct.pack("<IQQ", 3, 0, 1)
            + struct.pack("<Q", 1)
            + b"a"
            + struct.pack("<IIQ", 9, 9, 1),
            "unsupported item type",
        ),
        (
            b"GGUF"
            + struct.pack("<IQQ", 3, 0, 1)
            + struct.pack("<Q", 1)
            + b"v"
            + struct.pack("<I", 77),
            "unknown value type 77",
        ),
        (gguf([ARCH, kv_u32("general.alignment", 3)]), "alignment 3"),
        (gguf([ARCH], [tensor("t" * 65, [8])]), "tensor name is 65 bytes"),
        (gguf([ARCH], [tensor("t", [8] * 5)]), "5 dimensions"),
        (gguf([ARCH], [tensor("t", [8], ggml_type=250)]), "unknown type 250"),
        (gguf([ARCH], [tensor("t", [-8])]), "negative dimension"),
        (gguf([ARCH], [tensor("t", [33], ggml_type=2)]), "whole number of blocks"),
        (gguf([ARCH], [tensor("t", [8], offset=7)], data=b"\0" * 64), "not aligned"),
        (gguf([ARCH], [tensor("t", [1 << 40])], data=b"\0" * 32), "past the end"),
        (gguf([ARCH], [tensor("t", [2**31, 2**31, 2**31])]), "absurdly large"),
    ],
)
def test_malformed_files_are_rejected(tmp_path: Path, data: bytes, expected: str) -> None:
    assert expected in problem(write(tmp_path, data))


def test_a_truncated_real_model_is_rejected(tmp_path: Path) -> None:
    real = smollm2_path().read_bytes()
    for cut in (10, 1000, 2_000_000, len(real) - 1):
        text = problem(write(tmp_path, real[:cut], f"cut{cut}.gguf"))
        assert "truncated" in text


def test_non_regular_files_are_rejected(tmp_path: Path) -> None:
    assert problem(tmp_path) == "not a regular file"
    fifo = tmp_path / "fifo.gguf"
    os.mkfifo(fifo)
    assert problem(fifo) == "not a regular file"  # and the check did not block on it
    link = tmp_path / "zero.gguf"
    link.symlink_to("/dev/zero")
    assert problem(link) == "not a regular file"
    assert "cannot open" in problem(tmp_path / "missing.gguf")
