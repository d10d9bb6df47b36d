"""Codex CLI (`@openai/codex`, installed with npm into a cache outside the repository) runs
`codex exec` against the real server over the Responses API, as its users run it: a
`[model_providers.<name>]` entry with `wire_api = "responses"`. Codex sends ~6.4k tokens
of developer messages and 9 tools (two of types it alone can run: `namespace`,
`web_search`), `store: false` and `client_metadata`. Every request it sends must be
answered; the default model then either answers (the turn completes) or, sampling at
Codex's temperature 1, keeps calling tools until the conversation outgrows the context,
which ends in the one refusal allowed: the prompt-too-long 400."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from browser_llm.config import DEFAULT_MODEL_ID as MODEL
from tests import processes
from tests.e2e.conftest import served

CODEX_VERSION = "0.171.0"  # pinned, as every dependency
_CACHE = Path.home() / ".cache" / "browser-llm" / "agents" / f"codex-{CODEX_VERSION}"


def codex_binary() -> Path:
    """The pinned Codex CLI, installed on first use; skips where npm is missing."""
    binary = _CACHE / "node_modules" / ".bin" / "codex"
    if binary.exists():
        return binary
    npm = shutil.which("npm")
    if npm is None:
        pytest.skip("npm is not installed: Codex CLI (@openai/codex) cannot be installed here")
    _CACHE.mkdir(parents=True, exist_ok=True)
    package = f"@openai/codex@{CODEX_VERSION}"
    processes.run(
        [npm, "install", "--no-audit", "--no-fund", "--prefix", str(_CACHE), package],
        check=True,
        timeout=600,
        capture_output=True,
    )
    return binary


def _config(base_url: str) -> str:
    # No retries: a refused request should fail this test at once, not after five tries.
    return f"""model = "{MODEL}"
model_provider = "browser-llm"

[model_providers.browser-llm]
name = "Browser LLM"
base_url = "{base_url}"
env_key = "BROWSER_LLM_TEST_KEY"
wire_api = "responses"
request_max_retries = 0
stream_max_retries = 0
stream_idle_timeout_ms = 900000
"""


def test_codex_exec_against_the_server(tmp_path: Path) -> None:
    codex = codex_binary()
    home, work = tmp_path / "codex-home", tmp_path / "work"
    home.mkdir()
    work.mkdir()
    # Codex's prompt is ~6.4k tokens: more than the default 4096-token context holds.
    with served(tmp_path, BROWSER_LLM_CONTEXT_SIZE="8192", BROWSER_LLM_PARALLEL="1") as srv:
        (home / "config.toml").write_text(_config(srv.base_url.replace("/api/v1", "/v1")))
        last = tmp_path / "last-message.txt"
        env = {**os.environ, "CODEX_HOME": str(home), "BROWSER_LLM_TEST_KEY": "unused"}
        flags = ["--skip-git-repo-check", "--color", "never", "-o", str(last)]
        done = processes.run(
            [str(codex), "exec", *flags, "Say hi."],
            cwd=work,
            env=env,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=1200,  # a busy 2-core machine reads 6k prompt tokens slowly
        )
        log = srv.log.read_text()
    statuses = re.findall(r'"POST /v1/responses HTTP/1.1" (\d+)', log)
    served_lines = "\n".join(
        line for line in log.splitlines() if "/v1/responses" in line or "finished" in line
    )
    report = f"{done.stderr[-3000:]}\nserver:\n{served_lines}"
    # Every request Codex sent was answered; the first one needs no tool result.
    assert statuses and statuses[0] == "200", report
    if done.returncode == 0:
        assert set(statuses) == {"200"}, report
        # The turn ended on an answer the model finished (a 135M model's may even be
        # empty: the generic tool format's {"response": ""}).
        assert re.findall(r"completion tokens, (\w+)", log)[-1] == "stop", report
    else:
        # Codex sends no temperature (OpenAI's default 1 applies), so a 135M model may keep
        # calling tools until the conversation outgrows the context (then the
        # prompt-too-long 400, after tool round trips that were all answered), or ramble in
        # one answer until the context runs out, on any turn, the first included (then
        # `incomplete`, which Codex reports as an error).
        answered = statuses.index("400") if "400" in statuses else len(statuses)
        assert set(statuses[:answered]) == {"200"}, report
        assert set(statuses[answered:]) <= {"400"}, report  # Codex may retry it
        if answered < len(statuses):
            assert answered > 2, report  # the context filled with tool round trips
            # The 400 carries OpenAI's `context_length_exceeded` code, which Codex
            # recognises and reports in its own words.
            assert "ran out of room in the model's context window" in done.stderr, report
        else:
            assert "Incomplete response returned, reason: max_output_tokens" in done.stderr
            assert re.findall(r"completion tokens, (\w+)", log)[-1] == "length", report
