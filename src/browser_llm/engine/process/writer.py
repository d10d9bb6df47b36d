"""The engine process's writer thread: commands go out in order, and the event loop never
blocks on the socket. A command meant for a process that has died is dropped."""

from __future__ import annotations

import logging
import queue
import socket
import threading
from collections.abc import Callable
from typing import Any

from browser_llm.engine.process.wire import send_message

__all__ = ["CommandWriter"]

logger = logging.getLogger(__name__)


class CommandWriter:
    def __init__(self, socket_of: Callable[[int], socket.socket | None]) -> None:
        """`socket_of(generation)`: the live process's socket if it is still that one."""
        self._socket_of = socket_of
        self._outbox: queue.SimpleQueue[tuple[int, dict[str, Any]] | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name="engine-writer", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def send(self, generation: int, message: dict[str, Any]) -> None:
        self._outbox.put((generation, message))

    def stop(self, timeout_s: float) -> None:
        self._outbox.put(None)
        self._thread.join(timeout=timeout_s)

    def _run(self) -> None:
        while True:
            item = self._outbox.get()
            if item is None:
                return
            generation, message = item
            sock = self._socket_of(generation)
            if sock is None:
                continue  # meant for a process that has died
            try:
                send_message(sock, message)
            except OSError:
                pass  # the process died: the supervisor handles that
            except Exception:  # never lose the writer: later commands must still go out
                logger.exception("could not send %s to the engine process", message.get("op"))
