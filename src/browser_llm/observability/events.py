"""A tiny in-process publish/subscribe hub for live metric and log events.

Publishers may run on any thread (the engine thread logs too); each
subscriber decides how to hand events over to its own event loop.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

__all__ = ["EventHub", "Listener"]

Listener = Callable[[str, dict[str, Any]], None]


class EventHub:
    def __init__(self) -> None:
        self._listeners: list[Listener] = []
        self._lock = threading.Lock()

    def subscribe(self, listener: Listener) -> None:
        with self._lock:
            self._listeners.append(listener)

    def unsubscribe(self, listener: Listener) -> None:
        with self._lock:
            if listener in self._listeners:
                self._listeners.remove(listener)

    def publish(self, kind: str, data: dict[str, Any]) -> None:
        with self._lock:
            listeners = list(self._listeners)
        for listener in listeners:
            listener(kind, data)

    @property
    def active(self) -> bool:
        return bool(self._listeners)
