"""The engine process's messages, read by the server's event loop.

One wake-up per message, as the in-process engine has: a reader thread in between cost
3-4 ms of time to first token on 2 cores (bench/README.md). The supervisor thread only
waits until the loop has read everything the process sent before it ended.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import subprocess
import threading
from collections.abc import Callable
from typing import Any

from browser_llm.engine.process.wire import FrameReader

__all__ = ["LoopReader"]

logger = logging.getLogger(__name__)


class LoopReader:
    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        sock: socket.socket,
        proc: subprocess.Popen[bytes],
        on_message: Callable[[dict[str, Any]], None],
    ) -> None:
        self._loop, self._sock, self._proc = loop, sock, proc
        self._on_message = on_message
        self._frames = FrameReader()
        self._fd: int | None = None
        self._closed = threading.Event()

    def run_until_closed(self, stopping: threading.Event) -> None:
        """From the supervisor thread: reading starts on the loop; returns at the end."""
        self._loop.call_soon_threadsafe(self._attach)
        while not self._closed.wait(0.1):
            if stopping.is_set() and self._proc.poll() is not None:
                return  # shutting down: the loop is busy in shutdown() itself

    def detach(self) -> None:
        """From the loop thread (shutdown): stop reading, whatever is left unread."""
        if self._fd is not None:
            self._loop.remove_reader(self._fd)
            self._fd = None

    def _attach(self) -> None:
        self._fd = self._sock.fileno()
        self._loop.add_reader(self._fd, self._readable)

    def _readable(self) -> None:
        try:
            data = self._sock.recv(1 << 16)  # readable: returns at once
            for message in self._frames.feed(data) if data else ():
                self._on_message(message)
        except Exception as exc:  # WireError, a malformed message: end the process
            logger.error("engine process %d: %s; stopping it", self._proc.pid, exc)
            self._proc.kill()
            data = b""
        if not data:
            self.detach()
            self._closed.set()
