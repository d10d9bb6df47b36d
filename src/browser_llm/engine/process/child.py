"""The engine process: runs LlamaEngine for the server, which talks to it over a socket.

Started by engine/process/engine.py as ``python -m browser_llm.engine.process.child FD``.
The first message on the socket is the configuration; after that the server sends
load / unload / submit / cancel / ping / stop and this process answers with the engine's
events, one message per decode step. A llama.cpp crash ends this process only.

Signals: SIGINT and SIGTERM are ignored (a Ctrl+C reaches the whole process group;
the server drains first and then tells this process to stop). When the server goes
away its end of the socket closes and this process exits.
"""

from __future__ import annotations

import dataclasses
import faulthandler
import json
import logging
import os
import signal
import socket
import sys
import threading
import time
from concurrent.futures import Future
from dataclasses import asdict
from typing import Any

from browser_llm.core.errors import BrowserLLMError, InternalError, ModelLoadFailedError
from browser_llm.core.types import Embeddings, EmbedInput
from browser_llm.engine.base import EngineStats, Event, Failed, Finished, GenerationHandle
from browser_llm.engine.config import ContextConfig
from browser_llm.engine.native.cpu.governor import ThreadGovernor, foreign_cpu_reader
from browser_llm.engine.native.engine import LlamaEngine
from browser_llm.engine.native.vocab_ops import detokenize_work, tokenize_work
from browser_llm.engine.process.wire import (
    LOG_PREFIX,
    WireError,
    decode_request,
    decode_tokens,
    encode_embeddings,
    encode_error,
    encode_event,
    encode_model,
    recv_message,
    send_message,
)

__all__ = ["main"]


_STATS_EVERY_S = 0.1
# EngineStats as the server process needs them (restarts and details are its own).
_STATS_FIELDS = [
    f.name for f in dataclasses.fields(EngineStats) if f.name not in ("restarts", "details")
]


class _LineFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        text = record.getMessage()
        if record.exc_info:
            text += "\n" + self.formatException(record.exc_info)
        return f"{LOG_PREFIX}{record.levelno}\t{record.name}\t{json.dumps(text)}"


class _RemoteHandle(GenerationHandle):
    """A request the server submitted; its events go back over the socket."""

    def __init__(self, request: Any, key: int) -> None:
        super().__init__(request, None)
        self.key = key


class _Child:
    def __init__(self, sock: socket.socket) -> None:
        self._sock = sock
        self._send_lock = threading.Lock()
        self._handles: dict[int, _RemoteHandle] = {}
        self.engine: LlamaEngine | None = None
        self._stats_sent = 0.0

    def send(self, message: dict[str, Any]) -> None:
        try:
            with self._send_lock:
                send_message(self._sock, message)
        except OSError:
            os._exit(0)  # the server is gone: nobody is left to serve

    def deliver(self, items: list[tuple[GenerationHandle, Event]]) -> None:
        """The engine thread's sink: one message per step. The counters ride along at most
        every 0.1 s, and whenever a request ends (they cost time on every step otherwise)."""
        assert self.engine is not None
        out = []
        ended = False
        for handle, event in items:
            key = handle.key if isinstance(handle, _RemoteHandle) else 0
            out.append([key, encode_event(event)])
            if isinstance(event, Finished | Failed):
                self._handles.pop(key, None)
                ended = True
        message: dict[str, Any] = {"op": "events", "items": out}
        now = time.monotonic()
        if ended or now - self._stats_sent >= _STATS_EVERY_S:
            self._stats_sent = now
            stats = self.engine.stats()
            message["stats"] = {name: getattr(stats, name) for name in _STATS_FIELDS}
        self.send(message)

    def _reply(self, op_id: int, done: Future[Any]) -> None:
        error = done.exception()
        if error is None:
            result = done.result()
            if isinstance(result, Embeddings):
                embeddings = encode_embeddings(result)
                self.send({"op": "done", "id": op_id, "ok": True, "embeddings": embeddings})
                return
            model = encode_model(result) if result is not None else None
            self.send({"op": "done", "id": op_id, "ok": True, "model": model})
            return
        if not isinstance(error, BrowserLLMError):
            error = ModelLoadFailedError(f"loading the model failed: {error}")  # load/unload
        self.send({"op": "done", "id": op_id, "ok": False, "error": encode_error(error)})

    def _reply_value(self, op_id: int, done: Future[Any]) -> None:
        error = done.exception()
        if error is None:
            self.send({"op": "done", "id": op_id, "ok": True, "value": done.result()})
            return
        if not isinstance(error, BrowserLLMError):
            error = InternalError(f"tokenizing failed: {error}")
        self.send({"op": "done", "id": op_id, "ok": False, "error": encode_error(error)})

    def handle(self, message: dict[str, Any]) -> bool:
        """Runs one command; False on stop."""
        engine = self.engine
        assert engine is not None
        op = message.get("op")
        if op == "submit":
            key = int(message["key"])
            handle = _RemoteHandle(decode_request(message["request"]), key)
            self._handles[key] = handle
            engine.submit_handle(handle)
        elif op == "cancel":
            target = self._handles.get(int(message["key"]))
            if target is not None:
                target.cancel()
        elif op in ("load", "unload"):
            op_id = int(message["id"])
            done: Future[Any] = (
                engine.load_future(str(message["model_id"]), str(message["path"]))
                if op == "load"
                else engine.unload_future()
            )
            done.add_done_callback(lambda f: self._reply(op_id, f))
        elif op == "embed":
            embed_id = int(message["id"])
            texts = _embed_inputs(message["texts"])
            engine.embed_future(texts).add_done_callback(lambda f: self._reply(embed_id, f))
        elif op in ("tokenize", "detokenize"):
            op_id = int(message["id"])
            work = (
                tokenize_work(
                    str(message["text"]), bool(message["add_special"]), bool(message["special"])
                )
                if op == "tokenize"
                else detokenize_work(
                    [int(t) for t in message["tokens"]],
                    bool(message["remove_special"]),
                    bool(message["special"]),
                )
            )
            done = engine.vocab_future(work)
            done.add_done_callback(lambda f: self._reply_value(op_id, f))
        elif op == "ping":  # answered between two steps: the engine thread moves
            engine.vocab_future(lambda model: None).add_done_callback(
                lambda f: self.send({"op": "pong"})
            )
        elif op == "stop":
            return False
        return True


def _embed_inputs(data: Any) -> list[EmbedInput]:
    """An embed op's inputs: texts, or token id lists (JSON carries both as they are)."""
    if not isinstance(data, list):
        raise WireError("malformed embedding inputs")
    return [item if isinstance(item, str) else decode_tokens(item) for item in data]


def _configure_logging(level: str) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_LineFormatter())
    root = logging.getLogger("browser_llm")
    root.addHandler(handler)
    root.setLevel(logging.DEBUG if level == "debug" else logging.INFO)
    root.propagate = False


def main(argv: list[str]) -> int:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    faulthandler.enable()  # a crash leaves its Python stack on stderr, for /debug/logs
    sock = socket.socket(fileno=int(argv[1]))
    setup = recv_message(sock)
    if setup is None:
        return 0
    _configure_logging(str(setup.get("log_level", "info")))
    config = ContextConfig(**setup["config"])
    child = _Child(sock)
    engine_class = LlamaEngine
    if setup.get("fault_inject"):
        from browser_llm.engine.native.faults import FaultInjectingEngine

        engine_class = FaultInjectingEngine
    # The server process's CPU is ours too, not a neighbour's (engine/native/cpu/governor.py).
    governor = ThreadGovernor(
        config.threads,
        read_foreign=foreign_cpu_reader([os.getpid(), os.getppid()]),
        adaptive=config.adaptive_threads,
    )
    engine = child.engine = engine_class(config, deliver=child.deliver, governor=governor)
    engine.start()
    child.send(
        {
            "op": "hello",
            "pid": os.getpid(),
            "gpu_offload": engine.gpu_offload_supported,
            "gpu_devices": [asdict(d) for d in engine.gpu_devices],
        }
    )
    while True:
        message = recv_message(sock)
        if message is None:
            os._exit(0)  # the server is gone
        if not child.handle(message):
            break
    engine.shutdown()  # cancels what still runs and posts its events
    child.send({"op": "bye"})
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
