"""The prompt cache's files: saved KV state of long prompt prefixes, on disk.

Pure Python (no llama.cpp): the file format, the index of which token prefixes are
saved, checksums, and least-recently-used eviction under a disk budget. The engine
thread asks `candidates` and `load` and hands finished state bytes to `save`, which returns at once:
a writer thread of this module writes each file (temp file + rename).

A file: MAGIC, a 4-byte header length, a JSON header, then the payload (llama.cpp's
per-sequence state). The header names the model key, the prompt tokens whose cells the
payload holds, the payload's length and sha256, and the prefix hashes at every block
boundary, so a longer prompt finds the longest prefix it shares with a saved one.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import queue
import shutil
import struct
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = [
    "BLOCK_TOKENS",
    "CacheHit",
    "PromptStore",
    "model_dir_name",
    "model_key",
    "prefix_hashes",
    "remove_model_entries",
]

logger = logging.getLogger(__name__)

MAGIC = b"BLLMPC01"
BLOCK_TOKENS = 64  # prefixes are looked up at multiples of this many tokens
_HEADER_LEN = struct.Struct("<I")
_MAX_HEADER = 1 << 22
_PENDING_WRITES = 2  # more queued than this: a new save is dropped, never waited for
_HEAD_BYTES = 8 << 20  # a GGUF's header and tensor table sit in its first megabytes
_TAIL_BYTES = 1 << 20
_STALE_TEMP_S = 3600.0


def model_key(path: str, extra: str = "") -> str:
    """Identity of a model file (its size, the hash of its head and tail, which hold the
    header, tensor table and last weights) plus `extra` (what else changes KV cells)."""
    digest = hashlib.sha256()
    size = os.path.getsize(path)
    digest.update(f"{size}:{extra}:".encode())
    with open(path, "rb") as f:
        digest.update(f.read(_HEAD_BYTES))
        if size > _HEAD_BYTES:
            f.seek(max(_HEAD_BYTES, size - _TAIL_BYTES))
            digest.update(f.read(_TAIL_BYTES))
    return digest.hexdigest()[:32]


def model_dir_name(model_id: str) -> str:
    """Folder of one model id's entries (a hash: ids may hold any character)."""
    return hashlib.sha256(model_id.encode()).hexdigest()[:24]


def remove_model_entries(root: Path, model_id: str) -> None:
    """Deletes a model's saved prompts (its files were deleted)."""
    shutil.rmtree(root / model_dir_name(model_id), ignore_errors=True)


def prefix_hashes(tokens: list[int], limit: int | None = None) -> list[str]:
    """Chained hashes of `tokens` at every BLOCK_TOKENS boundary up to `limit`:
    element i covers tokens[: (i + 1) * BLOCK_TOKENS]."""
    end = len(tokens) if limit is None else min(limit, len(tokens))
    digest = hashlib.sha256()
    out: list[str] = []
    for start in range(0, end - BLOCK_TOKENS + 1, BLOCK_TOKENS):
        digest.update(struct.pack(f"<{BLOCK_TOKENS}i", *tokens[start : start + BLOCK_TOKENS]))
        out.append(digest.copy().hexdigest()[:32])
    return out


@dataclass(frozen=True)
class CacheHit:
    tokens: list[int]  # the prompt the payload's cells hold
    payload: memoryview  # writable (a bytearray's): llama.cpp reads it without a copy


@dataclass
class _Entry:
    path: Path
    size: int
    used: float  # for LRU: mtime, touched on every hit


class PromptStore:
    """Entries of the model loaded now, plus the byte count of the whole folder."""

    def __init__(self, root: Path, budget_bytes: int, min_tokens: int) -> None:
        self.root = root
        self.budget_bytes = budget_bytes
        self.min_tokens = max(BLOCK_TOKENS, min_tokens)
        self._key = ""
        self._dir: Path | None = None
        self._by_hash: dict[str, Path] = {}  # prefix hash -> file holding that prefix
        self._lock = threading.Lock()  # the writer thread adds entries and evicts
        self._entries: dict[Path, _Entry] = {}  # every file under root
        self._writes: queue.Queue[tuple[Path, dict[str, Any], bytearray] | None] = queue.Queue()
        self._writer: threading.Thread | None = None
        self._pending: set[Path] = set()  # queued or being written: indexed, not yet on disk
        self.lookups = 0
        self.hits = 0

    # ---- engine thread ------------------------------------------------------------------
    def open_model(self, model_id: str, key: str) -> None:
        """Indexes the saved prompts of the model loaded now (others stay on disk)."""
        self._key = key
        self._dir = self.root / model_dir_name(model_id)
        by_hash: dict[str, Path] = {}
        entries: dict[Path, _Entry] = {}
        self._drop_stale_temps()
        for path in self.root.glob("*/*.kv") if self.root.is_dir() else ():
            try:
                stat = path.stat()
            except OSError:
                continue
            entries[path] = _Entry(path, stat.st_size, stat.st_mtime)
            if path.parent == self._dir and path.name.startswith(key):
                header = _read_header(path)
                if header is not None and header.get("model") == key:
                    for h in header.get("hashes", []):
                        by_hash[h] = path
        with self._lock:
            self._entries = entries
            self._by_hash = by_hash

    def _drop_stale_temps(self) -> None:
        """Temp files an engine process killed mid-write left (an hour old: not in use)."""
        for path in self.root.glob("*/*.tmp*") if self.root.is_dir() else ():
            with contextlib.suppress(OSError):
                if path.stat().st_mtime < time.time() - _STALE_TEMP_S:
                    path.unlink()

    @property
    def active(self) -> bool:
        """A model is open: its prompts are looked up and saved."""
        return bool(self._key)

    def close_model(self) -> None:
        self._key, self._dir = "", None
        with self._lock:
            self._by_hash = {}

    def candidates(self, tokens: list[int], limit: int) -> list[tuple[int, Path]]:
        """Saved files sharing a block-aligned prefix of at most `limit` tokens with
        `tokens`, longest first, as (prefix tokens, file). Index only: no file is read."""
        if not self._key or limit < self.min_tokens:
            return []
        hashes = prefix_hashes(tokens, limit)
        with self._lock:
            found = [((i + 1) * BLOCK_TOKENS, self._by_hash.get(h)) for i, h in enumerate(hashes)]
        return [
            (n, path) for n, path in reversed(found) if path is not None and n >= self.min_tokens
        ]

    def load(self, path: Path, prefix: list[int]) -> CacheHit | None:
        """A file's verified contents if it holds the cells of `prefix` for this model;
        None (with a warning, and the file removed) if it is truncated, corrupt or foreign."""
        with self._lock:
            if path in self._pending:
                return None
        try:
            header, payload = _parse(_read(path))
        except (OSError, ValueError) as exc:
            logger.warning("prompt cache: ignoring %s: %s", path.name, exc)
            self._forget(path)
            return None
        tokens = header["tokens"]
        if header.get("model") != self._key or tokens[: len(prefix)] != prefix:
            logger.warning("prompt cache: ignoring %s: another model or prompt", path.name)
            self._forget(path)
            return None
        try:
            os.utime(path)  # most recently used
            used = path.stat().st_mtime
        except OSError:
            return None
        with self._lock:
            entry = self._entries.get(path)
            if entry is not None:
                entry.used = used
        return CacheHit(tokens, payload)

    def count(self, hit: bool) -> None:
        """A long prompt the slots could not serve was looked up here (hit: and loaded)."""
        self.lookups += 1
        self.hits += hit

    def wants(self, tokens: list[int], n_prefix: int) -> bool:
        """Whether a prompt whose first `n_prefix` tokens are in cells is worth saving."""
        if not self._key or self._dir is None or n_prefix < self.min_tokens:
            return False
        hashes = prefix_hashes(tokens, n_prefix)
        with self._lock:
            return bool(hashes) and hashes[-1] not in self._by_hash

    def save(self, tokens: list[int], n_prefix: int, payload: bytearray) -> None:
        """Queues a file of `payload` (the cells of `tokens`; the store keeps it), found by
        its prefixes up to `n_prefix` tokens. Returns at once: the checksum and the file
        are the writer thread's work. Drops the save when the writer lags."""
        if self._dir is None or self._writes.qsize() >= _PENDING_WRITES:
            return
        hashes = prefix_hashes(tokens, n_prefix)
        header = {"model": self._key, "tokens": tokens, "hashes": hashes}
        path = self._dir / f"{self._key}-{hashes[-1]}.kv"
        with self._lock:
            for h in hashes:  # visible now: a second identical prompt does not save again
                self._by_hash.setdefault(h, path)
            self._pending.add(path)
        self._start_writer()
        self._writes.put((path, header, payload))

    def stats(self) -> dict[str, int]:
        with self._lock:
            size = sum(e.size for e in self._entries.values())
            return {"bytes": size, "entries": len(self._entries)}

    def close(self, timeout: float = 30.0) -> None:
        """Finishes queued writes (server shutdown)."""
        if self._writer is not None and self._writer.is_alive():
            self._writes.put(None)
            self._writer.join(timeout)

    # ---- files -----------------------------------------------------------------------------
    def _forget(self, path: Path) -> None:
        """A bad file leaves the index and the disk."""
        with self._lock:
            self._by_hash = {h: p for h, p in self._by_hash.items() if p != path}
            self._entries.pop(path, None)
        with contextlib.suppress(OSError):
            path.unlink()

    def _start_writer(self) -> None:
        if self._writer is None or not self._writer.is_alive():
            self._writer = threading.Thread(
                target=self._write_loop, name="prompt-cache", daemon=True
            )
            self._writer.start()

    def _write_loop(self) -> None:
        while True:
            item = self._writes.get()
            if item is None:
                return
            path, header, payload = item
            try:
                self._write(path, header, payload)
            except Exception as exc:  # a full disk must not end the engine
                logger.warning("prompt cache: could not write %s: %s", path.name, exc)
                with self._lock:
                    self._by_hash = {h: p for h, p in self._by_hash.items() if p != path}
            finally:
                with self._lock:
                    self._pending.discard(path)

    def _write(self, path: Path, header: dict[str, Any], payload: bytearray) -> None:
        header = {
            **header,
            "payload_bytes": len(payload),
            "payload_sha256": hashlib.sha256(payload).hexdigest(),
        }
        blob = json.dumps(header, separators=(",", ":")).encode()
        head = MAGIC + _HEADER_LEN.pack(len(blob)) + blob
        if len(head) + len(payload) > self.budget_bytes:
            raise ValueError("larger than the whole disk budget")
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".tmp{os.getpid()}")
        with open(tmp, "wb") as f:
            f.write(head)
            f.write(payload)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)  # readers see the whole file or none
        stat = path.stat()
        with self._lock:
            self._entries[path] = _Entry(path, stat.st_size, stat.st_mtime)
        self._evict()

    def _evict(self) -> None:
        """Least recently used files go until the folder fits the budget."""
        with self._lock:
            total = sum(e.size for e in self._entries.values())
            victims: list[Path] = []
            for entry in sorted(self._entries.values(), key=lambda e: e.used):
                if total <= self.budget_bytes:
                    break
                total -= entry.size
                victims.append(entry.path)
            for path in victims:
                self._entries.pop(path, None)
            gone = set(victims)
            self._by_hash = {h: p for h, p in self._by_hash.items() if p not in gone}
        for path in victims:
            with contextlib.suppress(OSError):
                path.unlink()


def _read_header(path: Path) -> dict[str, Any] | None:
    try:
        with open(path, "rb") as f:
            head = f.read(len(MAGIC) + _HEADER_LEN.size)
            if len(head) != len(MAGIC) + _HEADER_LEN.size or not head.startswith(MAGIC):
                return None
            (n,) = _HEADER_LEN.unpack_from(head, len(MAGIC))
            if n > _MAX_HEADER:
                return None
            header = json.loads(f.read(n))
    except (OSError, ValueError):
        return None
    return header if isinstance(header, dict) else None


def _read(path: Path) -> memoryview:
    """A file's bytes in one writable buffer (no copy after the read)."""
    with open(path, "rb") as f:
        size = os.fstat(f.fileno()).st_size
        data = bytearray(size)
        if f.readinto(data) != size:
            raise ValueError("shorter than its size")
    return memoryview(data)


def _parse(data: memoryview) -> tuple[dict[str, Any], memoryview]:
    """Header and payload of a file's bytes; ValueError when truncated or corrupt."""
    start = len(MAGIC) + _HEADER_LEN.size
    if len(data) < start or data[: len(MAGIC)] != MAGIC:
        raise ValueError("not a prompt cache file")
    (n,) = _HEADER_LEN.unpack_from(data, len(MAGIC))
    if n > _MAX_HEADER or len(data) < start + n:
        raise ValueError("truncated header")
    header = json.loads(bytes(data[start : start + n]))
    if not isinstance(header, dict) or not isinstance(header.get("tokens"), list):
        raise ValueError("malformed header")
    payload = data[start + n :]
    if len(payload) != header.get("payload_bytes"):
        raise ValueError(
            f"payload is {len(payload)} bytes, header says {header.get('payload_bytes')}"
        )
    if hashlib.sha256(payload).hexdigest() != header.get("payload_sha256"):
        raise ValueError("payload checksum mismatch")
    return header, payload
