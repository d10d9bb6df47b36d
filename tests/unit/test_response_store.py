"""The Responses API's store: rows survive reopening and a crash mid-write, retention
bounds hold, the schema is versioned."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from browser_llm.core.errors import StorageError
from browser_llm.service.response_store import SCHEMA_VERSION, ResponseStore, StoredResponse


def _item(rid: str, created_at: float | None = None, text: str = "hi") -> StoredResponse:
    return StoredResponse(
        rid,
        time.time() if created_at is None else created_at,
        {"id": rid, "object": "response", "output": [{"type": "message", "text": text}]},
        [{"id": f"msg_{rid}", "type": "message", "role": "user", "content": text}],
        [{"id": f"msg_{rid}", "type": "message", "role": "user", "content": text}],
    )


def test_rows_survive_reopening(tmp_path: Path) -> None:
    path = tmp_path / "data" / "responses.sqlite3"
    store = ResponseStore(path, 100, None)
    store.save_sync(_item("resp_a", text="héllo 🙂"))
    store.close()
    again = ResponseStore(path, 100, None)
    found = again.get_sync("resp_a")
    assert found is not None
    assert found.body["output"][0]["text"] == "héllo 🙂"
    assert found.input_items[0]["id"] == "msg_resp_a"
    assert again.get_sync("resp_missing") is None
    assert again.delete_sync("resp_a") is True
    assert again.delete_sync("resp_a") is False
    assert again.get_sync("resp_a") is None
    again.close()


def test_wal_mode_and_schema_version(tmp_path: Path) -> None:
    path = tmp_path / "responses.sqlite3"
    store = ResponseStore(path, 100, None)
    store.save_sync(_item("resp_a"))
    store.close()
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION


def test_a_store_from_a_newer_server_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "responses.sqlite3"
    with sqlite3.connect(path) as conn:
        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    with pytest.raises(StorageError, match="newer"):
        ResponseStore(path, 100, None).get_sync("resp_a")


def test_a_file_that_is_not_a_database_is_a_storage_error(tmp_path: Path) -> None:
    path = tmp_path / "responses.sqlite3"
    path.write_bytes(b"not a database at all, just some bytes " * 100)
    with pytest.raises(StorageError):
        ResponseStore(path, 100, None).get_sync("resp_a")


def test_count_bound_drops_the_oldest(tmp_path: Path) -> None:
    store = ResponseStore(tmp_path / "r.sqlite3", 3, None)
    now = time.time()
    for n in range(5):
        store.save_sync(_item(f"resp_{n}", now + n))
    assert store.count() == 3
    assert store.get_sync("resp_0") is None and store.get_sync("resp_1") is None
    assert store.get_sync("resp_4") is not None


def test_age_bound_hides_and_prunes_old_rows(tmp_path: Path) -> None:
    store = ResponseStore(tmp_path / "r.sqlite3", 100, 60.0)
    store.save_sync(_item("resp_old", time.time() - 120))
    assert store.get_sync("resp_old") is None  # expired: gone for readers at once
    store.save_sync(_item("resp_new"))
    assert store.count() == 1  # and pruned at the next write


_CRASH = textwrap.dedent(
    """
    import os, signal, sys, time
    from pathlib import Path
    from browser_llm.service.response_store import ResponseStore, StoredResponse

    store = ResponseStore(Path(sys.argv[1]), 100, None)
    def item(rid, size):
        body = {"id": rid, "output": "x" * size}
        return StoredResponse(rid, time.time(), body, [], [{"big": "y" * size}])
    store.save_sync(item("resp_kept", 10))
    conn = store._open()
    # Killed as the COMMIT of the next write starts: its row is written, not committed.
    conn.set_trace_callback(
        lambda sql: os.kill(os.getpid(), signal.SIGKILL) if sql.startswith("COMMIT") else None
    )
    store.save_sync(item("resp_torn", 2_000_000))
    print("not reached")
    """
)


def test_a_crash_mid_write_leaves_no_half_row(tmp_path: Path) -> None:
    path = tmp_path / "responses.sqlite3"
    done = subprocess.run(
        [sys.executable, "-c", _CRASH, str(path)], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == -9, done.stderr
    assert "not reached" not in done.stdout
    store = ResponseStore(path, 100, None)
    assert store.get_sync("resp_kept") is not None
    assert store.get_sync("resp_torn") is None
    assert store.count() == 1
    store.save_sync(_item("resp_after"))  # and the store still takes writes
    assert store.get_sync("resp_after") is not None
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
