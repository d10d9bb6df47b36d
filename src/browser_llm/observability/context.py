"""The current request id, visible to every log record made while serving it."""

from __future__ import annotations

from contextvars import ContextVar

__all__ = ["current_request_id"]

current_request_id: ContextVar[str | None] = ContextVar("current_request_id", default=None)
