"""BROWSER_LLM_LOG_LEVEL sets what the console prints (issue 33 item 12): at `warning` no
INFO line reaches it, from the server or its engine process, while /debug/logs still keeps
the INFO records it always keeps."""

from __future__ import annotations

from pathlib import Path

import httpx

from tests.e2e.conftest import served


def test_warning_keeps_info_lines_off_the_console(tmp_path: Path) -> None:
    with served(tmp_path, BROWSER_LLM_LOG_LEVEL="warning") as server:
        body = {"prompt": "Hello", "max_tokens": 4, "temperature": 0}
        assert httpx.post(f"{server.base_url}/generate", json=body, timeout=60).status_code == 200
        logs = httpx.get(f"{server.base_url}/debug/logs", params={"level": "info"}, timeout=10)
        kept = [r for r in logs.json()["data"]["logs"] if r["level"] == "info"]
    console = server.log.read_text().splitlines()  # the server's stdout and stderr
    assert kept, "the /debug/logs buffer lost its INFO records"
    assert [line for line in console if "INFO" in line] == []
