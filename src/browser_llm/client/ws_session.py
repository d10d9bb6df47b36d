"""A WebSocket session for the Python SDK: generations by id, abort, subscriptions.

Uses the `websockets` package (installed with the server; import it lazily so the
HTTP clients keep needing httpx only).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

from browser_llm.client.errors import BrowserLLMError, error_for

__all__ = ["WebSocketSession"]


class WebSocketSession:
    """Blocking session: `with client.websocket() as ws: ws.generate(...)`."""

    def __init__(self, url: str, api_key: str | None = None, timeout: float = 120.0) -> None:
        try:
            from websockets.sync.client import connect
        except ImportError as exc:  # pragma: no cover - websockets ships with the server
            raise BrowserLLMError("UNSUPPORTED", "pip install websockets for sessions") from exc
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else None
        self._connection = connect(url, additional_headers=headers, open_timeout=timeout)
        self._ws = self._connection.__enter__()
        self._timeout = timeout
        self._pending: list[dict[str, Any]] = []

    def __enter__(self) -> WebSocketSession:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._connection.__exit__(None, None, None)

    def send(self, kind: str, msg_id: str, payload: Any = None) -> None:
        message: dict[str, Any] = {"type": kind, "id": msg_id}
        if payload is not None:
            message["payload"] = payload
        self._ws.send(json.dumps(message))

    def messages(self) -> Iterator[dict[str, Any]]:
        """Every server message, in order (token, done, error, metric, log)."""
        while True:
            if self._pending:
                yield self._pending.pop(0)
                continue
            yield json.loads(self._ws.recv(timeout=self._timeout))

    def generate(
        self, msg_id: str, on_token: Callable[[str], None] | None = None, **payload: Any
    ) -> dict[str, Any]:
        """Runs one generation to its end; other ids' messages are kept for messages()."""
        self.send("generate", msg_id, payload)
        others: list[dict[str, Any]] = []
        try:
            for message in self.messages():
                if message.get("id") != msg_id:
                    others.append(message)
                elif message["type"] == "token" and on_token is not None:
                    on_token(message["data"]["token"])
                elif message["type"] == "done":
                    done: dict[str, Any] = message["data"]["completion"]
                    return done
                elif message["type"] == "error":
                    data = message["data"]
                    raise error_for(
                        str(data.get("code")), str(data.get("error")), details=data.get("details")
                    )
        finally:
            self._pending = others + self._pending
        raise BrowserLLMError("CONNECTION_ERROR", "socket closed")  # pragma: no cover

    def abort(self, msg_id: str) -> None:
        self.send("abort", msg_id)

    def subscribe(self, msg_id: str, events: list[str], level: str = "info") -> None:
        self.send("subscribe", msg_id, {"events": events, "level": level})

    def unsubscribe(self, msg_id: str) -> None:
        self.send("unsubscribe", msg_id)
