"""`browser-llm models list | pull | add | rm` on a models folder, against a local HTTP server."""

from __future__ import annotations

from pathlib import Path

import pytest

from browser_llm.cli import main
from tests.modelfiles import serve_files, sha256_of, smollm2_path


@pytest.fixture
def models_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "models"
    monkeypatch.setenv("BROWSER_LLM_MODELS_DIR", str(folder))
    return folder


def test_add_pull_list_rm(models_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    sha = sha256_of(smollm2_path())
    with serve_files({"smol.gguf": smollm2_path()}) as files:
        url = files.url("drop", "smol.gguf")
        assert main(["models", "add", url, "--id", "cli-remote", "--sha256", sha]) == 0
        assert main(["models", "pull", "cli-remote"]) == 0
    stored = models_dir / "cli-remote.gguf"
    assert sha256_of(stored) == sha
    assert main(["models", "add", str(smollm2_path()), "--id", "cli-local"]) == 0
    assert main(["models", "list"]) == 0
    out = capsys.readouterr().out
    assert "cli-remote" in out and "cli-local" in out and "smollm2-135m-instruct-q4" in out
    assert main(["models", "rm", "cli-remote"]) == 0
    assert not stored.exists()
    assert main(["models", "rm", "cli-local"]) == 0
    assert smollm2_path().exists()  # the user's own file is never deleted
    assert "cli-local" not in (models_dir / "user-models.json").read_text()


def test_errors_are_reported(
    models_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "bad.gguf"
    bad.write_bytes(b"not a model")
    assert main(["models", "add", str(bad), "--id", "bad"]) == 1
    assert main(["models", "add", str(smollm2_path()), "--id", "../evil"]) == 1
    assert main(["models", "pull", "no-such-model"]) == 1
    err = capsys.readouterr().err
    assert "MODEL_LOAD_FAILED" in err and "VALIDATION_ERROR" in err and "NOT_FOUND" in err
