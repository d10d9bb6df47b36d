"""The child-process probe: a crash, a refusal or a hang in the child never reaches the caller."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

import pytest

from browser_llm.core.errors import ModelLoadFailedError
from browser_llm.engine.process.probe import probe_model
from tests.modelfiles import gguf, kv_str, smollm2_path


def reason(path: str, **kwargs: object) -> str:
    with pytest.raises(ModelLoadFailedError) as err:
        asyncio.run(probe_model(path, **kwargs))  # type: ignore[arg-type]
    assert err.value.details is not None
    return str(err.value.details["reason"])


def test_a_real_model_passes() -> None:
    result = asyncio.run(probe_model(str(smollm2_path())))
    assert result.n_params > 100_000_000
    assert result.has_chat_template


def test_a_crashing_child_is_reported_and_this_process_lives_on() -> None:
    abort = [sys.executable, "-c", "import os; os.abort()"]
    assert reason("unused", command=abort) == "probe_crashed"
    segv = [sys.executable, "-c", "import ctypes; ctypes.string_at(0)"]
    assert reason("unused", command=segv) == "probe_crashed"
    assert os.getpid() > 0  # still here


def test_a_file_llama_cpp_refuses(tmp_path: Path) -> None:
    hollow = tmp_path / "hollow.gguf"
    hollow.write_bytes(gguf([kv_str("general.architecture", "llama")]))
    assert reason(str(hollow)) == "probe_rejected"


def test_a_hanging_child_is_killed() -> None:
    hang = [sys.executable, "-c", "import time; time.sleep(60)"]
    assert reason("unused", command=hang, timeout_s=0.5) == "probe_timeout"
