"""The prompt cache's files (engine/prompt_store.py): index, longest prefix, checksums,
atomic writes, LRU eviction under the disk budget, and a deleted model's entries."""

from __future__ import annotations

import logging
import os
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from browser_llm.engine.prompt_store import (
    BLOCK_TOKENS,
    PromptStore,
    model_dir_name,
    model_key,
    prefix_hashes,
    remove_model_entries,
)

B = BLOCK_TOKENS


def _store(root: Path, budget: int = 1 << 30, min_tokens: int = 2 * B) -> PromptStore:
    store = PromptStore(root, budget, min_tokens)
    store.open_model("model-a", "key-a")
    return store


def _save(store: PromptStore, tokens: list[int], payload: bytes) -> None:
    n_prefix = (len(tokens) - B) // B * B
    assert store.wants(tokens, n_prefix)
    store.save(tokens, n_prefix, bytearray(payload))
    store.close()  # waits for the writer thread


def _files(root: Path) -> list[Path]:
    return sorted(root.glob("*/*"))


def test_prefix_hashes_are_chained_per_block() -> None:
    a = list(range(3 * B + 5))
    b = a[: 2 * B] + [7] * (B + 5)
    ha, hb = prefix_hashes(a), prefix_hashes(b)
    assert len(ha) == 3
    assert ha[:2] == hb[:2] and ha[2] != hb[2]
    assert prefix_hashes(a, 2 * B + 3) == ha[:2]


def test_a_longer_prompt_finds_the_longest_saved_prefix(tmp_path: Path) -> None:
    store = _store(tmp_path)
    saved = list(range(4 * B + 10))
    _save(store, saved, b"cells" * 100)
    longer = saved[: 3 * B] + [99] * (3 * B)  # leaves the saved prompt in its 4th block
    found = store.candidates(longer, len(longer) - B)
    assert [n for n, _ in found] == [3 * B, 2 * B]
    hit = store.load(found[0][1], longer[: 3 * B])
    assert hit is not None
    assert hit.tokens == saved and hit.payload == b"cells" * 100
    assert store.candidates([5] * (4 * B), 3 * B) == []


def test_prefixes_below_the_minimum_are_neither_saved_nor_found(tmp_path: Path) -> None:
    store = _store(tmp_path, min_tokens=3 * B)
    tokens = list(range(3 * B))
    assert not store.wants(tokens, 2 * B)
    assert store.candidates(tokens, 2 * B) == []


def test_the_index_survives_a_restart_and_a_second_save_is_skipped(tmp_path: Path) -> None:
    tokens = list(range(5 * B))
    _save(_store(tmp_path), tokens, b"x" * 1000)
    again = _store(tmp_path)  # a new process: reads the folder
    assert not again.wants(tokens, 4 * B)
    found = again.candidates(tokens, 4 * B)
    assert found and found[0][0] == 4 * B
    assert again.stats() == {"bytes": _files(tmp_path)[0].stat().st_size, "entries": 1}


def test_another_model_does_not_see_the_entries(tmp_path: Path) -> None:
    tokens = list(range(5 * B))
    _save(_store(tmp_path), tokens, b"x" * 10)
    other = PromptStore(tmp_path, 1 << 30, 2 * B)
    other.open_model("model-a", "key-b")  # same id, another file: another key
    assert other.candidates(tokens, 4 * B) == []


@pytest.mark.parametrize("damage", ["truncate", "flip", "foreign", "garbage"])
def test_a_damaged_file_is_ignored_with_a_warning_and_removed(
    tmp_path: Path, damage: str, caplog: pytest.LogCaptureFixture
) -> None:
    tokens = list(range(5 * B))
    store = _store(tmp_path)
    _save(store, tokens, bytes(range(256)) * 40)
    (path,) = _files(tmp_path)
    data = bytearray(path.read_bytes())
    if damage == "truncate":
        data = data[:-100]
    elif damage == "flip":
        data[-5] ^= 0xFF
    elif damage == "foreign":  # a whole, valid file of another model under this name
        other = PromptStore(tmp_path / "other", 1 << 30, 2 * B)
        other.open_model("model-a", "key-z")
        other.save(tokens, 4 * B, bytearray(b"y" * 99))
        other.close()
        data = bytearray(_files(tmp_path / "other")[0].read_bytes())
    else:
        data = bytearray(b"\x00" * 64)
    path.write_bytes(bytes(data))
    found = store.candidates(tokens, 4 * B)
    assert found
    with caplog.at_level(logging.WARNING):
        assert store.load(found[0][1], tokens[: found[0][0]]) is None
    assert "prompt cache: ignoring" in caplog.text
    assert not path.exists()
    assert store.candidates(tokens, 4 * B) == []


def test_a_file_whose_tokens_differ_is_not_served(tmp_path: Path) -> None:
    store = _store(tmp_path)
    tokens = list(range(5 * B))
    _save(store, tokens, b"z")
    (path,) = _files(tmp_path)
    assert store.load(path, [1] * (2 * B)) is None  # as if two prefixes shared a hash


def test_writes_are_atomic_and_leave_no_temp_file(tmp_path: Path) -> None:
    store = _store(tmp_path)
    _save(store, list(range(5 * B)), b"p" * 5000)
    names = [p.name for p in _files(tmp_path)]
    assert len(names) == 1 and names[0].endswith(".kv")


def test_least_recently_used_files_go_first_when_over_budget(tmp_path: Path) -> None:
    payload = b"q" * 10_000
    store = _store(tmp_path, budget=35_000)
    prompts = [[k] * (5 * B) for k in range(3)]
    for prompt in prompts:
        _save(store, prompt, payload)
    files = _files(tmp_path)
    assert len(files) == 3
    # The first one is used (a hit touches it): the second is now the oldest.
    old = time.time() - 100
    for i, path in enumerate(sorted(files, key=lambda p: p.stat().st_mtime)):
        os.utime(path, (old + i, old + i))
    store = _store(tmp_path, budget=35_000)
    first = store.candidates(prompts[0], 4 * B)[0]
    assert store.load(first[1], prompts[0][: first[0]]) is not None
    _save(store, [9] * (5 * B), payload)
    assert store.stats()["entries"] == 3
    assert store.candidates(prompts[1], 4 * B) == []
    assert store.candidates(prompts[0], 4 * B) and store.candidates(prompts[2], 4 * B)
    assert sum(p.stat().st_size for p in _files(tmp_path)) <= 35_000


def test_a_save_larger_than_the_budget_is_dropped(tmp_path: Path) -> None:
    store = _store(tmp_path, budget=1000)
    tokens = list(range(5 * B))
    store.save(tokens, 4 * B, bytearray(b"w" * 5000))
    store.close()
    assert _files(tmp_path) == []
    assert store.wants(tokens, 4 * B)  # not indexed after the failed write


def test_deleting_a_model_removes_its_entries_only(tmp_path: Path) -> None:
    _save(_store(tmp_path), list(range(5 * B)), b"a")
    other = PromptStore(tmp_path, 1 << 30, 2 * B)
    other.open_model("model-b", "key-b")
    _save(other, list(range(5 * B)), b"b")
    remove_model_entries(tmp_path, "model-a")
    assert not (tmp_path / model_dir_name("model-a")).exists()
    assert len(_files(tmp_path)) == 1


def test_model_key_changes_with_the_file_and_the_extra(tmp_path: Path) -> None:
    path = tmp_path / "m.gguf"
    path.write_bytes(b"GGUF" + b"\x01" * 5000)
    key = model_key(str(path), "fa=auto")
    assert key == model_key(str(path), "fa=auto")
    assert key != model_key(str(path), "fa=off")
    path.write_bytes(b"GGUF" + b"\x02" * 5000)
    assert key != model_key(str(path), "fa=auto")


def test_a_file_still_being_written_is_a_quiet_miss(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    store = _store(tmp_path)
    tokens = list(range(5 * B))
    gate = threading.Event()
    real_write = store._write

    def slow_write(path: Path, header: dict[str, Any], payload: bytearray) -> None:
        gate.wait(10)
        real_write(path, header, payload)

    store._write = slow_write  # type: ignore[method-assign]
    store.save(tokens, 4 * B, bytearray(b"late"))
    (n, path), *_ = store.candidates(tokens, 4 * B)
    with caplog.at_level(logging.WARNING):
        assert store.load(path, tokens[:n]) is None
    assert caplog.text == ""
    gate.set()
    store.close()
    hit = store.load(path, tokens[:n])
    assert hit is not None and hit.payload == b"late"


def test_hits_and_lookups_count_what_the_engine_reports(tmp_path: Path) -> None:
    store = _store(tmp_path)
    store.count(hit=True)
    store.count(hit=False)
    assert (store.lookups, store.hits) == (2, 1)
