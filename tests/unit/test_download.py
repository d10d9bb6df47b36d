"""Downloads against a local HTTP server: resume, checksums, failures, quota, sharing."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from browser_llm.core.errors import ModelLoadFailedError, StorageError
from browser_llm.models.catalog import Catalog
from browser_llm.models.download import RetryPolicy
from browser_llm.models.library import ModelLibrary
from browser_llm.models.storage import ModelStore
from tests.modelfiles import FileServer, serve_files, sha256_of, smollm2_path

NAME = "smol.gguf"
FAST = RetryPolicy(attempts=3, backoff_s=0.01, max_backoff_s=0.05)


@pytest.fixture(scope="module")
def files() -> Iterator[FileServer]:
    with serve_files({NAME: smollm2_path()}) as server:
        yield server


def library(
    tmp_path: Path, url: str, sha256: str | None, quota_gb: float | None = None
) -> ModelLibrary:
    models = tmp_path / "models"
    models.mkdir(parents=True, exist_ok=True)
    entry = {
        "id": "test-model",
        "name": "test",
        "size_bytes": smollm2_path().stat().st_size,
        "vram_required": "1GB",
        "speed_tier": "fast",
        "quality_tier": "basic",
        "source": {"type": "url", "url": url},
        "sha256": sha256,
    }
    (models / "user-models.json").write_text(json.dumps({"models": [entry]}))
    return ModelLibrary(Catalog.builtin(models), ModelStore(models, quota_gb), retry=FAST)


def fetch(lib: ModelLibrary) -> Path:
    return asyncio.run(lib.ensure_local(lib.entry("test-model")))


def leftovers(lib: ModelLibrary) -> list[str]:
    return sorted(p.name for p in lib.store.models_dir.glob("test-model*"))


def test_download_resumes_after_a_dropped_connection(tmp_path: Path, files: FileServer) -> None:
    lib = library(tmp_path, files.url("drop", NAME), sha256_of(smollm2_path()))
    path = fetch(lib)
    assert sha256_of(path) == sha256_of(smollm2_path())
    assert path == lib.store.models_dir / "test-model.gguf"
    ranges = files.gets("drop", NAME)
    assert ranges[0] is None  # the first request asked for everything and was cut
    assert ranges[1] is not None and ranges[1].startswith("bytes=")
    assert int(ranges[1][6:-1]) > 0  # the second asked only for the rest
    assert leftovers(lib) == ["test-model.gguf"]


def test_a_server_that_ignores_range_starts_over(tmp_path: Path, files: FileServer) -> None:
    lib = library(tmp_path, files.url("norange", NAME), sha256_of(smollm2_path()))
    entry = lib.entry("test-model")
    partial = lib.store.partial_path(entry)
    partial.write_bytes(b"stale bytes from an older file")
    assert sha256_of(fetch(lib)) == sha256_of(smollm2_path())
    assert files.gets("norange", NAME)[-1] == f"bytes={len(b'stale bytes from an older file')}-"


def test_wrong_bytes_fail_the_checksum_and_leave_no_file(tmp_path: Path, files: FileServer) -> None:
    lib = library(tmp_path, files.url("wrong", NAME), sha256_of(smollm2_path()))
    with pytest.raises(StorageError) as err:
        fetch(lib)
    assert err.value.code == "STORAGE_ERROR"
    assert err.value.details is not None and err.value.details["reason"] == "checksum_mismatch"
    assert leftovers(lib) == []
    assert lib.store.path_for(lib.entry("test-model")) is None


def test_without_a_checksum_the_gguf_check_still_guards(tmp_path: Path, files: FileServer) -> None:
    lib = library(tmp_path, files.url("ok", NAME), None)
    assert sha256_of(fetch(lib)) == sha256_of(smollm2_path())
    served = tmp_path / "junk.gguf"
    served.write_bytes(b"<html>not a model</html>" * 10)
    with serve_files({"junk.gguf": served}) as junk:
        lib2 = library(tmp_path / "b", junk.url("ok", "junk.gguf"), None)
        with pytest.raises(ModelLoadFailedError):
            fetch(lib2)
        assert leftovers(lib2) == []


@pytest.mark.parametrize(
    ("mode", "reason", "requests"), [("404", "http_status", 1), ("500", "network", 3)]
)
def test_http_errors_give_storage_error(
    tmp_path: Path, files: FileServer, mode: str, reason: str, requests: int
) -> None:
    lib = library(tmp_path, files.url(mode, NAME), None)
    with pytest.raises(StorageError) as err:
        fetch(lib)
    assert err.value.details is not None and err.value.details["reason"] == reason
    assert len(files.gets(mode, NAME)) == requests  # 404 is final; 500 is retried, bounded
    assert leftovers(lib) == []


def test_the_quota_is_checked_before_downloading(tmp_path: Path, files: FileServer) -> None:
    lib = library(tmp_path, files.url("ok", "quota-" + NAME), None, quota_gb=0.05)
    with pytest.raises(StorageError) as err:
        lib.check_can_fetch(lib.entry("test-model"))
    assert err.value.details is not None and err.value.details["reason"] == "quota"
    with pytest.raises(StorageError):
        fetch(lib)
    assert files.gets("ok", "quota-" + NAME) == []  # refused before any request


def test_two_callers_share_one_download(tmp_path: Path, files: FileServer) -> None:
    with serve_files({"shared.gguf": smollm2_path()}) as server:
        lib = library(tmp_path, server.url("ok", "shared.gguf"), sha256_of(smollm2_path()))

        async def both() -> list[Path]:
            entry = lib.entry("test-model")
            first = asyncio.create_task(lib.ensure_local(entry))
            second = asyncio.create_task(lib.ensure_local(entry))
            await asyncio.sleep(0)
            job = lib.job("test-model")
            assert job is not None
            paths = await asyncio.gather(first, second)
            assert job.progress.state == "done"
            assert job.progress.bytes_done == smollm2_path().stat().st_size
            assert job.progress.fraction == 1.0
            return paths

        first, second = asyncio.run(both())
        assert first == second
        assert len(server.gets("ok", "shared.gguf")) == 1


def test_packaged_models_resolve_and_gemma_assembles(tmp_path: Path) -> None:
    lib = ModelLibrary(Catalog.builtin(tmp_path), ModelStore(tmp_path))
    smol = lib.entry("smollm2-135m-instruct-q4")
    assert lib.store.path_for(smol) == smollm2_path()
    gemma = lib.entry("gemma3-270m-q4")
    assert lib.store.is_local(gemma)  # installed chunk packages: no network needed
    path = asyncio.run(lib.ensure_local(gemma))
    assert path == tmp_path / "gemma3-270m-q4.gguf"
    assert sha256_of(path) == gemma.sha256
    assert not (tmp_path / "gemma3-270m-q4.gguf.partial").exists()
    size = path.stat().st_size
    assert asyncio.run(lib.remove(gemma)) == size
    assert not path.exists()


def test_a_download_held_by_another_process_is_refused(tmp_path: Path, files: FileServer) -> None:
    import fcntl

    lib = library(tmp_path, files.url("ok", "locked-" + NAME), None)
    lock_path = lib.store.models_dir / "test-model.gguf.lock"
    with lock_path.open("ab") as other:  # what a second process (models pull) would hold
        fcntl.flock(other.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        with pytest.raises(StorageError) as err:
            fetch(lib)
        assert err.value.details is not None and err.value.details["reason"] == "locked"
    assert files.gets("ok", "locked-" + NAME) == []
