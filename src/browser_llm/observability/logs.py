"""Logging: the one place that configures it, and the ring buffer behind /debug/logs."""

from __future__ import annotations

import logging
import threading
import traceback
from collections import deque
from dataclasses import dataclass
from typing import Any

from browser_llm.observability.context import current_request_id
from browser_llm.observability.events import EventHub

__all__ = ["LEVELS", "LogBuffer", "LogRecord", "configure_logging"]

# API level names (the spec's) -> logging levels.
LEVELS = {
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warn": logging.WARNING,
    "error": logging.ERROR,
}
_NAMES = {
    logging.DEBUG: "debug",
    logging.INFO: "info",
    logging.WARNING: "warn",
    logging.ERROR: "error",
    logging.CRITICAL: "error",
}


@dataclass(frozen=True)
class LogRecord:
    level: str
    service: str
    message: str
    data: dict[str, Any] | None
    timestamp: float
    stack: str | None

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "level": self.level,
            "service": self.service,
            "message": self.message,
            "timestamp": self.timestamp,
        }
        if self.data:
            out["data"] = self.data
        if self.stack:
            out["stack"] = self.stack
        return out


def _service(logger_name: str) -> str:
    """browser_llm.engine.native.engine -> engine; uvicorn.error -> http."""
    parts = logger_name.split(".")
    if parts[0] == "browser_llm" and len(parts) > 1:
        return parts[1]
    return "http" if parts[0] == "uvicorn" else parts[0]


class LogBuffer(logging.Handler):
    """Keeps the last `capacity` records in memory (a ring: old ones fall off)."""

    def __init__(
        self, capacity: int = 2000, level: int = logging.INFO, hub: EventHub | None = None
    ) -> None:
        super().__init__(level)
        self._hub = hub
        self._records: deque[LogRecord] = deque(maxlen=capacity)
        self._lock = threading.Lock()  # records arrive from the engine thread too

    def emit(self, record: logging.LogRecord) -> None:
        try:
            message = record.getMessage()
        except Exception:  # a bad format string must not break logging
            message = str(record.msg)
        data: dict[str, Any] = dict(getattr(record, "data", None) or {})
        request_id = current_request_id.get()
        if request_id:
            data.setdefault("requestId", request_id)
        stack = None
        if record.exc_info:
            stack = "".join(traceback.format_exception(*record.exc_info))
        entry = LogRecord(
            level=_NAMES.get(record.levelno, "info"),
            service=_service(record.name),
            message=message,
            data=data or None,
            timestamp=record.created,
            stack=stack,
        )
        with self._lock:
            self._records.append(entry)
        if self._hub is not None and self._hub.active:
            self._hub.publish("log", entry.as_dict())

    def query(self, min_level: str, since: float | None, limit: int) -> list[LogRecord]:
        """Newest last: records at or above min_level, at or after since, the last `limit`."""
        floor = LEVELS[min_level]
        with self._lock:
            rows = [
                r
                for r in self._records
                if LEVELS[r.level] >= floor and (since is None or r.timestamp >= since)
            ]
        return rows[-limit:] if limit else []

    def __len__(self) -> int:
        return len(self._records)


def configure_logging(level: str) -> None:
    """The console prints `level` and above. The handler itself filters: the app runs the
    browser_llm logger at INFO for /debug/logs (api/app.py), and those records reach the
    console's handler too."""
    numeric = getattr(logging, level.upper(), logging.INFO)
    console = logging.StreamHandler()
    console.setLevel(numeric)
    console.setFormatter(logging.Formatter("%(asctime)s %(levelname)-7s %(name)s: %(message)s"))
    logging.basicConfig(level=numeric, handlers=[console])
    # llama.cpp's own chatter is only wanted when debugging.
    native = logging.getLogger("browser_llm.engine.native.llama_cpp")
    native.setLevel(logging.DEBUG if level == "debug" else logging.WARNING)
