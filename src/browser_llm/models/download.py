"""Resumable HTTP(S) downloads: .partial file, Range resume, bounded retries, sha256, rename.

The bytes go to ``<dest>.partial``. A dropped connection, a 5xx, 408 or 429
is retried with exponential backoff, asking for the rest with ``Range``; the
retry budget is bounded and refilled whenever bytes arrive. The complete file
is hashed (mismatch: the partial is deleted, STORAGE_ERROR), validated by the
caller, then renamed into place atomically, so ``dest`` only ever holds a
whole, checked file. A lock file keeps two processes off the same partial.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import hashlib
import logging
import os
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import httpx

from browser_llm.core.errors import BrowserLLMError, StorageError

__all__ = ["DownloadProgress", "RetryPolicy", "download_file", "sha256_file"]

logger = logging.getLogger(__name__)

_CHUNK = 1 << 20
_RETRY_STATUS = {408, 429, 500, 502, 503, 504}
_CONTENT_RANGE = re.compile(r"bytes (\d+)-(\d+)/(\d+|\*)")


@dataclass(frozen=True)
class RetryPolicy:
    attempts: int = 6  # consecutive failures without progress before giving up
    backoff_s: float = 0.5  # first wait; doubles each failure
    max_backoff_s: float = 15.0
    timeout: httpx.Timeout = field(
        default_factory=lambda: httpx.Timeout(30.0, connect=15.0, read=60.0)
    )


@dataclass
class DownloadProgress:
    """Live figures of one download, read by GET /models/{id} and the CLI."""

    state: str = "queued"  # queued | downloading | retrying | verifying | done | failed
    bytes_done: int = 0
    total_bytes: int | None = None
    speed_bps: float = 0.0
    attempts: int = 0
    error: str | None = None
    started_at: float = field(default_factory=time.monotonic)
    _window: list[tuple[float, int]] = field(default_factory=list, repr=False)

    @property
    def fraction(self) -> float | None:
        if not self.total_bytes:
            return None
        return min(1.0, self.bytes_done / self.total_bytes)

    @property
    def eta_s(self) -> float | None:
        if not self.total_bytes or self.speed_bps <= 0:
            return None
        return max(0.0, (self.total_bytes - self.bytes_done) / self.speed_bps)

    def advance(self, n: int) -> None:
        # Speed over the last ~3 s of samples: steady, yet quick to follow changes.
        now = time.monotonic()
        self.bytes_done += n
        self._window.append((now, self.bytes_done))
        while len(self._window) > 2 and now - self._window[0][0] > 3.0:
            self._window.pop(0)
        t0, b0 = self._window[0]
        if now > t0:
            self.speed_bps = (self.bytes_done - b0) / (now - t0)

    def as_dict(self) -> dict[str, Any]:
        eta = self.eta_s
        return {
            "state": self.state,
            "bytes": self.bytes_done,
            "total_bytes": self.total_bytes,
            "progress": self.fraction,
            "speed_bytes_per_s": round(self.speed_bps, 1),
            "eta_ms": round(eta * 1000) if eta is not None else None,
            "attempts": self.attempts,
            "error": self.error,
        }


class _Retry(Exception):
    """A failure worth another attempt."""


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while block := f.read(_CHUNK):
            digest.update(block)
    return digest.hexdigest()


def _lock(path: Path) -> IO[bytes]:
    handle = path.open("ab")
    try:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as exc:
        handle.close()
        raise StorageError(
            "this model is being downloaded by another process",
            {"reason": "locked", "file": path.name},
        ) from exc
    return handle


def _total_from(resp: httpx.Response, offset: int) -> int | None:
    if resp.status_code == 206:
        match = _CONTENT_RANGE.fullmatch(resp.headers.get("content-range", ""))
        if not match or int(match.group(1)) != offset:
            raise _Retry("the server answered a different byte range")
        return int(match.group(3)) if match.group(3) != "*" else None
    length = resp.headers.get("content-length")
    return int(length) if length and length.isdigit() else None


async def _attempt(
    client: httpx.AsyncClient,
    url: str,
    partial: Path,
    progress: DownloadProgress,
    check_room: Callable[[int], None],
) -> None:
    offset = partial.stat().st_size if partial.exists() else 0
    headers = {"Range": f"bytes={offset}-"} if offset else {}
    async with client.stream("GET", url, headers=headers) as resp:
        if resp.status_code == 416 and offset:
            # Asked past the end: the partial is complete, or stale.
            match = re.fullmatch(r"bytes \*/(\d+)", resp.headers.get("content-range", ""))
            if match and int(match.group(1)) == offset:
                progress.total_bytes = offset
                return
            partial.unlink(missing_ok=True)
            raise _Retry("the partial file does not fit the remote file; starting over")
        if resp.status_code in _RETRY_STATUS:
            raise _Retry(f"HTTP {resp.status_code}")
        if resp.status_code not in (200, 206):
            raise StorageError(
                f"download failed: HTTP {resp.status_code} from {resp.url.host}",
                {"reason": "http_status", "status": resp.status_code, "url": url},
            )
        if resp.status_code == 200 and offset:
            offset = 0  # the server ignored Range: start over
        total = _total_from(resp, offset)
        progress.total_bytes = total
        progress.bytes_done = offset
        if total is not None:
            check_room(max(0, total - offset))
        progress.state = "downloading"
        with partial.open("r+b" if offset else "wb") as out:
            out.seek(offset)
            out.truncate()
            async for chunk in resp.aiter_bytes(_CHUNK):
                out.write(chunk)
                progress.advance(len(chunk))
                if total is not None and progress.bytes_done > total:
                    partial.unlink(missing_ok=True)
                    raise _Retry("the server sent more bytes than it announced")
            out.flush()
            os.fsync(out.fileno())
        if total is not None and progress.bytes_done < total:
            raise _Retry(f"connection closed at {progress.bytes_done} of {total} bytes")


async def _fetch(
    url: str,
    partial: Path,
    progress: DownloadProgress,
    check_room: Callable[[int], None],
    policy: RetryPolicy,
    client: httpx.AsyncClient,
) -> None:
    failures = 0
    while True:
        before = progress.bytes_done
        progress.attempts += 1
        try:
            await _attempt(client, url, partial, progress, check_room)
            return
        except (_Retry, httpx.TransportError) as exc:
            failures = 0 if progress.bytes_done > before else failures + 1
            if failures >= policy.attempts:
                raise StorageError(
                    f"download failed after {progress.attempts} attempts: {exc}",
                    {"reason": "network", "url": url, "attempts": progress.attempts},
                ) from exc
            wait = min(policy.max_backoff_s, policy.backoff_s * 2 ** max(0, failures - 1))
            logger.warning("download of %s interrupted (%s); retrying in %.1f s", url, exc, wait)
            progress.state = "retrying"
            await asyncio.sleep(wait)


async def download_file(
    url: str,
    dest: Path,
    *,
    sha256: str | None,
    progress: DownloadProgress,
    check_room: Callable[[int], None],
    validate: Callable[[Path], object] | None = None,
    policy: RetryPolicy | None = None,
    client: httpx.AsyncClient | None = None,
) -> str:
    """Downloads `url` to `dest`; returns the file's sha256. Raises StorageError.

    `check_room(n)` is called once the size is known, before writing; `validate`
    (the GGUF check) runs on the complete partial file before the rename.
    """
    if not url.startswith(("https://", "http://")):
        raise StorageError("only http(s) URLs can be downloaded", {"reason": "bad_url"})
    policy = policy or RetryPolicy()
    dest.parent.mkdir(parents=True, exist_ok=True)
    partial = dest.with_name(dest.name + ".partial")
    lock_path = dest.with_name(dest.name + ".lock")
    lock = _lock(lock_path)
    own_client = client is None
    http = client or httpx.AsyncClient(follow_redirects=True, timeout=policy.timeout)
    try:
        await _fetch(url, partial, progress, check_room, policy, http)
        progress.state = "verifying"
        actual = await asyncio.to_thread(sha256_file, partial)
        if sha256 is not None and actual != sha256.lower():
            partial.unlink(missing_ok=True)
            raise StorageError(
                "downloaded file does not match its sha256; it was deleted",
                {"reason": "checksum_mismatch", "expected": sha256, "actual": actual},
            )
        if validate is not None:
            try:
                await asyncio.to_thread(validate, partial)
            except BrowserLLMError:
                partial.unlink(missing_ok=True)
                raise
        os.replace(partial, dest)
        progress.state = "done"
        return actual
    except BaseException as exc:
        progress.state = "failed"
        progress.error = str(exc) or type(exc).__name__
        raise
    finally:
        if own_client:
            await http.aclose()
        # Removed while still held, so no other process can be holding this inode.
        lock_path.unlink(missing_ok=True)
        with contextlib.suppress(OSError):
            fcntl.flock(lock.fileno(), fcntl.LOCK_UN)
        lock.close()
