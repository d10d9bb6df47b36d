"""Stored responses of the Responses API (`store: true`): each response, the input items it
was asked with and the whole context that formed its prompt, in SQLite in the data
directory, so `previous_response_id` continues a conversation across restarts.

One row per response, written in one transaction: a crash mid-write leaves the row out,
never half of it (SQLite's journal; WAL mode so reads do not wait for a write). Rows are
self-contained (the context is copied, not linked), so pruning one never breaks another's
continuation. The schema version lives in `PRAGMA user_version`.
"""

from __future__ import annotations

import asyncio
import json
import logging
import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from browser_llm.core.errors import StorageError

__all__ = ["SCHEMA_VERSION", "ResponseStore", "StoredResponse"]

logger = logging.getLogger(__name__)

# Migrations in order: MIGRATIONS[n] takes a store from version n to n + 1.
MIGRATIONS: tuple[str, ...] = (
    """
    CREATE TABLE responses (
        id TEXT PRIMARY KEY,
        created_at REAL NOT NULL,
        body TEXT NOT NULL,
        input_items TEXT NOT NULL,
        context TEXT NOT NULL
    );
    CREATE INDEX responses_by_age ON responses (created_at);
    """,
)
SCHEMA_VERSION = len(MIGRATIONS)


@dataclass(frozen=True)
class StoredResponse:
    id: str
    created_at: float  # unix seconds
    body: dict[str, Any]  # the response object, as the API returned it
    input_items: list[dict[str, Any]]  # this request's own input items (with ids)
    context: list[dict[str, Any]]  # every item its prompt was made of, input last


class ResponseStore:
    """The store at `path`, opened on first use (a server that never stores a response
    creates no file). `max_count` rows at most, none older than `max_age_s` (None: no
    age bound)."""

    def __init__(self, path: Path, max_count: int, max_age_s: float | None) -> None:
        self.path = path
        self.max_count = max_count
        self.max_age_s = max_age_s
        self._conn: sqlite3.Connection | None = None
        self._lock = threading.Lock()  # one connection, used from worker threads

    # The async face: SQLite blocks (fsync), so it runs off the event loop.
    async def save(self, item: StoredResponse) -> None:
        await asyncio.to_thread(self.save_sync, item)

    async def get(self, response_id: str) -> StoredResponse | None:
        return await asyncio.to_thread(self.get_sync, response_id)

    async def delete(self, response_id: str) -> bool:
        return await asyncio.to_thread(self.delete_sync, response_id)

    def save_sync(self, item: StoredResponse) -> None:
        row = (
            item.id,
            item.created_at,
            _dump(item.body),
            _dump(item.input_items),
            _dump(item.context),
        )
        with self._lock:
            conn = self._open()
            try:
                with conn:  # one transaction: the row and the pruning, or nothing
                    conn.execute("INSERT OR REPLACE INTO responses VALUES (?, ?, ?, ?, ?)", row)
                    self._prune(conn)
            except sqlite3.Error as exc:
                raise _storage_error("could not store the response", exc) from exc

    def get_sync(self, response_id: str) -> StoredResponse | None:
        with self._lock:
            conn = self._open()
            try:
                found = conn.execute(
                    "SELECT id, created_at, body, input_items, context FROM responses "
                    "WHERE id = ? AND created_at >= ?",
                    (response_id, self._oldest()),
                ).fetchone()
            except sqlite3.Error as exc:
                raise _storage_error("could not read the response store", exc) from exc
        if found is None:
            return None
        rid, created_at, body, input_items, context = found
        return StoredResponse(
            rid, created_at, json.loads(body), json.loads(input_items), json.loads(context)
        )

    def delete_sync(self, response_id: str) -> bool:
        with self._lock:
            conn = self._open()
            try:
                with conn:
                    cursor = conn.execute("DELETE FROM responses WHERE id = ?", (response_id,))
            except sqlite3.Error as exc:
                raise _storage_error("could not delete the response", exc) from exc
        return cursor.rowcount > 0

    def count(self) -> int:
        with self._lock:
            conn = self._open()
            return int(conn.execute("SELECT count(*) FROM responses").fetchone()[0])

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

    def _oldest(self) -> float:
        return 0.0 if self.max_age_s is None else time.time() - self.max_age_s

    def _prune(self, conn: sqlite3.Connection) -> None:
        conn.execute("DELETE FROM responses WHERE created_at < ?", (self._oldest(),))
        conn.execute(
            "DELETE FROM responses WHERE id IN (SELECT id FROM responses "
            "ORDER BY created_at DESC, rowid DESC LIMIT -1 OFFSET ?)",
            (self.max_count,),
        )

    def _open(self) -> sqlite3.Connection:
        if self._conn is not None:
            return self._conn
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        except (OSError, sqlite3.Error) as exc:
            raise _storage_error(f"cannot open the response store at {self.path}", exc) from exc
        try:
            conn.execute("PRAGMA busy_timeout = 5000")
            conn.execute("PRAGMA journal_mode = WAL")
            # WAL + NORMAL: a process crash loses no committed row (only a power cut could).
            conn.execute("PRAGMA synchronous = NORMAL")
            _migrate(conn, self.path)
            conn.isolation_level = "DEFERRED"  # `with conn:` opens and commits transactions
        except sqlite3.Error as exc:  # not a database, or a damaged one
            conn.close()
            raise _storage_error(f"the response store at {self.path} cannot be read", exc) from exc
        except BaseException:
            conn.close()
            raise
        self._conn = conn
        return conn


def _migrate(conn: sqlite3.Connection, path: Path) -> None:
    version = int(conn.execute("PRAGMA user_version").fetchone()[0])
    if version > SCHEMA_VERSION:
        raise StorageError(
            f"the response store at {path} has schema version {version}, newer than this "
            f"server's {SCHEMA_VERSION}: it was written by a newer Browser LLM"
        )
    for step in range(version, SCHEMA_VERSION):
        try:
            # executescript commits on its own; the version moves in the same script.
            conn.executescript(
                f"BEGIN IMMEDIATE;\n{MIGRATIONS[step]}\nPRAGMA user_version = {step + 1};\nCOMMIT;"
            )
        except sqlite3.Error as exc:
            if conn.in_transaction:
                conn.rollback()
            raise _storage_error(f"could not upgrade the response store at {path}", exc) from exc
        logger.info("response store %s: schema version %d", path, step + 1)


def _dump(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def _storage_error(what: str, exc: BaseException) -> StorageError:
    logger.error("%s: %s", what, exc)
    return StorageError(f"{what}: {exc}")
