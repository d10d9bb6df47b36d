"""A scripted stand-in for the /engine page, speaking its WebSocket protocol.

It lets the relay, faults and error mapping be tested without a browser;
tests/browser_engine/test_chromium.py runs the real page in chromium.
"""

from __future__ import annotations

import json
import queue
import threading
from collections.abc import Callable
from typing import Any

from websockets.sync.client import ClientConnection, connect

READINGS = {
    "webgpu_available": False,
    "gpu_vram_gb": None,
    "storage_quota_gb": 10.0,
    "storage_used_gb": 0.5,
    "webgpu_context_losses": 0,
    "memory_errors": 0,
    "threads": 2,
    "multi_thread": True,
    "cached_models": [],
}
PIECES = ("Hello", ",", " world")

Reply = Callable[["FakeTab", dict[str, Any]], None]


def loaded(tab: FakeTab, message: dict[str, Any]) -> None:
    """Loads at once on WebAssembly."""
    data = message["data"]
    done = {"model_id": data["model_id"], "from_cache": False, "load_time_s": 0.1}
    done |= {"context_length": data["n_ctx"], "n_vocab": 49152, "backend": "wasm"}
    tab.send({"type": "loaded", "id": message["id"], "data": done})


def answer(tab: FakeTab, message: dict[str, Any]) -> None:
    """Admits with 5 prompt tokens, sends PIECES (cut at max_tokens), then done."""
    rid, data = message["id"], message["data"]
    tab.send({"type": "admitted", "id": rid, "prompt_tokens": 5})
    pieces = PIECES[: data["max_tokens"]]
    for piece in pieces:
        tab.send({"type": "token", "id": rid, "text": piece})
    finish = "length" if len(pieces) < len(PIECES) else "stop"
    done = {"finish_reason": finish, "prompt_tokens": 5, "completion_tokens": len(pieces)}
    tab.send({"type": "done", "id": rid, "data": done})


def hang(tab: FakeTab, message: dict[str, Any]) -> None:
    """Admits and sends one piece, then nothing: a long generation in progress."""
    rid = message["id"]
    tab.send({"type": "admitted", "id": rid, "prompt_tokens": 5})
    tab.send({"type": "token", "id": rid, "text": "Once"})


class FakeTab:
    def __init__(
        self,
        ws_url: str,
        readings: dict[str, Any] | None = None,
        reply: Reply = answer,
        on_load: Reply = loaded,
    ) -> None:
        self.reply = reply
        self.on_load = on_load
        self.frozen = False  # True: answers nothing any more (a hung page)
        self.received: queue.Queue[dict[str, Any]] = queue.Queue()
        self.log: list[dict[str, Any]] = []
        self._connection = connect(ws_url)
        self.ws: ClientConnection = self._connection.__enter__()
        self.send({"type": "hello", "data": {**READINGS, **(readings or {})}})
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def send(self, message: dict[str, Any]) -> None:
        self.ws.send(json.dumps(message))

    def _read(self) -> None:
        try:
            for raw in self.ws:
                message = json.loads(raw)
                self.log.append(message)
                self.received.put(message)
                if self.frozen:
                    continue
                if message["type"] == "ping":
                    self.send({"type": "pong"})
                elif message["type"] == "load":
                    self.on_load(self, message)
                elif message["type"] == "generate":
                    self.reply(self, message)
        except Exception:  # the socket closed
            pass

    def wait_for(self, kind: str, timeout: float = 30) -> dict[str, Any]:
        while True:
            message = self.received.get(timeout=timeout)
            if message["type"] == kind:
                return message

    def close(self) -> None:
        self.ws.close()
        self._reader.join(timeout=10)
