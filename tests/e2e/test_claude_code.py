"""Claude Code itself (`@anthropic-ai/claude-code`, installed with npm into a cache outside
the repository) driven non-interactively against the real server, as its users run it:
only ANTHROPIC_BASE_URL, ANTHROPIC_API_KEY and the model are set. Skipped, saying so,
where npm is missing."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

import pytest

from browser_llm.config import DEFAULT_MODEL_ID as MODEL
from tests import processes
from tests.e2e.conftest import Server

VERSION = "2.1.332"
CACHE = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "browser-llm"


@pytest.fixture(scope="module")
def claude_bin() -> Path:
    npm = shutil.which("npm")
    if npm is None:
        pytest.skip("npm is not installed: Claude Code cannot be installed to drive it")
    prefix = CACHE / f"claude-code-{VERSION}"
    binary = prefix / "node_modules" / ".bin" / "claude"
    if not binary.exists():
        prefix.mkdir(parents=True, exist_ok=True)
        package = f"@anthropic-ai/claude-code@{VERSION}"  # pinned, as every dependency
        processes.run(
            [npm, "install", "--no-audit", "--no-fund", "--prefix", str(prefix), package],
            check=True,
            timeout=600,
            capture_output=True,
        )
    return binary


def _claude(binary: Path, server: Server, home: Path, *args: str) -> dict[str, Any]:
    home.mkdir(exist_ok=True)
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(home),  # its settings and session files stay in the test's folder
        "ANTHROPIC_BASE_URL": server.base_url.removesuffix("/api/v1"),
        "ANTHROPIC_API_KEY": "unused",
        "DISABLE_TELEMETRY": "1",
        "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
    }
    done = processes.run(
        [str(binary), "-p", "say hi", "--model", MODEL, "--output-format", "json", *args],
        env=env,
        cwd=home,
        capture_output=True,
        text=True,
        timeout=300,
    )
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    assert lines, f"no JSON result (exit {done.returncode}):\n{done.stdout}\n{done.stderr}"
    result: dict[str, Any] = json.loads(lines[-1])
    return result


# Claude Code samples at temperature 1 and asks for up to 32,000 tokens. About one turn in
# six, the 135M model rambles until the 4,096-token context is full; Claude Code then asks
# it to continue and that prompt is too long. That is the model, not the server, so such a
# turn is tried again (up to ATTEMPTS), and only that kind of failure may be retried.
ATTEMPTS = 4


def test_bare_turn_completes(claude_bin: Path, server: Server, tmp_path: Path) -> None:
    system = ("--system-prompt", "You are a helpful assistant.")
    for attempt in range(ATTEMPTS):
        home = tmp_path / f"home{attempt}"
        result = _claude(claude_bin, server, home, "--bare", *system, "--tools", "")
        if not result["is_error"]:
            break
        assert result["terminal_reason"] == "prompt_too_long", result
        assert result["usage"]["output_tokens"] > 2000, result  # the context ran out
    assert result["is_error"] is False, result
    assert result["terminal_reason"] == "completed", result
    assert isinstance(result["result"], str) and result["result"].strip()
    assert result["usage"]["output_tokens"] > 0 and result["usage"]["input_tokens"] > 0


def test_default_mode_on_a_small_context_is_prompt_too_long(
    claude_bin: Path, server: Server, tmp_path: Path
) -> None:
    # Its own tools and system prompt are ~12k tokens; the default context holds 4,096.
    result = _claude(claude_bin, server, tmp_path / "home")
    assert result["is_error"] is True
    assert result["api_error_status"] == 400, result
    assert result["api_error_type"] == "invalid_request_error"
    assert result["terminal_reason"] == "prompt_too_long", result  # it read our error as such
