"""The Engine protocol, served by a child process that owns llama.cpp.

The server process never loads llama.cpp. One engine process (child.py) holds the model,
the context, the KV cache and the scheduler, as LlamaEngine does in process; this class
forwards commands to it over a socket pair and hands its events to the event loop. When
the process dies (a signal, an abort, the OOM killer), running requests end with
INFERENCE_ERROR naming how; queued ones run again on the restarted process, which loads
the same model after a back-off; three deaths before a first token mark the model failed;
a load that kills it fails with MODEL_LOAD_FAILED and the previous model comes back
(docs/reliability.md). A process alive but making no progress with work owed (wedge.py)
is killed, then handled as any other death. Threads: a supervisor (starts, waits,
restarts), a writer (writer.py), a reader of its output (spawn.py), the wedge watcher;
the event loop reads its messages (reader.py).
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import socket
import subprocess
import threading
from collections.abc import Sequence
from concurrent.futures import Future
from typing import Any

from browser_llm.core.errors import BrowserLLMError, CancelledError
from browser_llm.core.types import Embeddings, EmbedInput, GpuDevice, LoadedModel
from browser_llm.engine.base import (
    EngineState,
    EngineStats,
    Event,
    Failed,
    GenerationHandle,
    GenerationRequest,
    post_all,
)
from browser_llm.engine.config import ContextConfig
from browser_llm.engine.process.counters import ProcessCounters
from browser_llm.engine.process.exits import ChildExit, RestartPolicy, crash_loop_error
from browser_llm.engine.process.pending import Pending, PendingWork, ProcessHandle
from browser_llm.engine.process.reader import LoopReader
from browser_llm.engine.process.spawn import EngineProcessInfo, spawn, wait_or_kill
from browser_llm.engine.process.wedge import WedgeLimits, WedgeTarget, WedgeWatcher
from browser_llm.engine.process.wire import (
    decode_event,
    decode_gpu_devices,
    decode_model,
    decode_text,
    decode_tokens,
    encode_request,
    encode_setup,
    recv_message,
    send_message,
    settle,
)
from browser_llm.engine.process.writer import CommandWriter

__all__ = ["ProcessEngine"]

logger = logging.getLogger(__name__)


class ProcessEngine:
    """Implements the Engine protocol with llama.cpp in a child process."""

    def __init__(
        self,
        config: ContextConfig,
        fault_inject: bool = False,
        log_level: str = "info",
        policy: RestartPolicy | None = None,
        wedge: WedgeLimits | None = None,
    ) -> None:
        self._setup = encode_setup(config, fault_inject, log_level)
        self._policy = policy or RestartPolicy()
        self._lock = threading.Lock()
        self._counter = itertools.count(1)
        self._work = PendingWork()
        self._writer = CommandWriter(self._socket_of)
        self._generation = 0  # bumps per engine process; stale sends are dropped
        self._connected = False
        self._sock: socket.socket | None = None
        self._proc: subprocess.Popen[bytes] | None = None
        self._stopping = threading.Event()
        self._model: LoadedModel | None = None
        self._failed = False
        self._gpu = False
        self._gpu_devices: tuple[GpuDevice, ...] = ()
        self._counters = ProcessCounters(config.threads)
        self.info = EngineProcessInfo()
        self._supervisor = threading.Thread(target=self._supervise, name="engine-supervisor")
        self._supervisor.daemon = True
        self._wedged: tuple[int, float] | None = None  # (generation, seconds) it was killed
        self._watcher = WedgeWatcher(
            wedge or WedgeLimits(),
            self._wedge_target,
            lambda generation: self._writer.send(generation, {"op": "ping"}),
            self._claim_wedged,
        )

    # ---- Engine protocol ------------------------------------------------------
    @property
    def state(self) -> EngineState:
        if self._failed:
            return "error"
        if self.info.state in ("starting", "restarting") and self._model is not None:
            return "loading"
        with self._lock:
            loading = self._work.loading
        if loading:
            return "loading"
        return "ready" if self._model is not None else "idle"

    @property
    def model(self) -> LoadedModel | None:
        return self._model

    @property
    def gpu_offload_supported(self) -> bool:
        return self._gpu

    @property
    def gpu_devices(self) -> tuple[GpuDevice, ...]:
        return self._gpu_devices

    def not_loaded_reason(self) -> str | None:
        if self._failed and self.info.failure:
            return self.info.failure
        return None

    def check_fits(self, model_id: str, size_bytes: int) -> None:
        return None  # a native load's memory is checked by llama.cpp itself

    def start(self) -> None:
        """Call it from the event loop: that loop reads the engine process's messages."""
        self._loop = asyncio.get_running_loop()
        self._reader: LoopReader | None = None
        if not self._supervisor.is_alive():
            self._supervisor.start()
            self._writer.start()
            self._watcher.start(self._stopping)

    def shutdown(self) -> None:
        self._stopping.set()
        with self._lock:
            if self._connected:
                self._writer.send(self._generation, {"op": "stop"})
        if self._proc is not None:
            wait_or_kill(self._proc, timeout_s=30)
        if self._reader is not None:  # shutdown() holds the loop: it never saw the end
            self._reader.detach()
        self._writer.stop(timeout_s=10)
        self._supervisor.join(timeout=10)
        self._fail_all(CancelledError("server is shutting down"))
        self.info.state = "stopped"

    async def load(self, model_id: str, path: str) -> LoadedModel:
        message = {"op": "load", "model_id": model_id, "path": path}
        result: LoadedModel = await asyncio.wrap_future(self._operation(message))
        return result

    async def unload(self) -> None:
        await asyncio.wrap_future(self._operation({"op": "unload"}))

    async def embed(self, texts: Sequence[EmbedInput]) -> Embeddings:
        result: Embeddings = await asyncio.wrap_future(
            self._operation({"op": "embed", "texts": list(texts)})
        )
        return result

    def submit(self, request: GenerationRequest) -> GenerationHandle:
        handle = ProcessHandle(request, asyncio.get_running_loop(), self._cancel)
        with self._lock:
            seq = next(self._counter)
            handle.key = seq
            message = {"op": "submit", "key": seq, "request": encode_request(request)}
            self._track(Pending(seq, message, handle=handle))
        return handle

    async def tokenize(self, text: str, add_special: bool, parse_special: bool) -> list[int]:
        message = {"op": "tokenize", "text": text, "add_special": add_special}
        value = await asyncio.wrap_future(self._operation({**message, "special": parse_special}))
        return decode_tokens(value)

    async def detokenize(
        self, tokens: list[int], remove_special: bool, unparse_special: bool
    ) -> str:
        message = {"op": "detokenize", "tokens": tokens, "remove_special": remove_special}
        value = await asyncio.wrap_future(self._operation({**message, "special": unparse_special}))
        return decode_text(value)

    def stats(self) -> EngineStats:
        return self._counters.total(self.info.restarts, self.info.as_dict())

    # ---- commands ---------------------------------------------------------------
    def _operation(self, message: dict[str, Any]) -> Future[Any]:
        done: Future[Any] = Future()
        with self._lock:
            seq = next(self._counter)
            self._track(Pending(seq, {**message, "id": seq}, done=done))
            if message["op"] == "load":
                self._failed = False  # an explicit load starts over
        return done

    def _track(self, pending: Pending) -> None:
        """Under the lock: remembers it and sends it now if the process is up."""
        self._work.add(pending)
        if self._connected:
            pending.sent = True
            self._writer.send(self._generation, pending.message)

    def _cancel(self, handle: ProcessHandle) -> None:
        with self._lock:
            pending = self._work.get(handle.key)
            if pending is None:
                return
            if not pending.sent:  # the process never saw it
                self._work.pop(handle.key)
                handle.post(Failed(CancelledError("cancelled while queued")))
            elif self._connected:
                self._writer.send(self._generation, {"op": "cancel", "key": handle.key})

    def _socket_of(self, generation: int) -> socket.socket | None:
        with self._lock:
            return self._sock if generation == self._generation else None

    # ---- supervision ------------------------------------------------------------------
    def _supervise(self) -> None:
        while not self._stopping.is_set():
            exit_ = self._run_one()
            if self._stopping.is_set():
                return
            self._on_death(exit_)
            if self._stopping.wait(self._policy.delay_s):
                return

    def _run_one(self) -> ChildExit:
        """Starts an engine process, serves it until it ends, returns how it ended."""
        proc, parent_sock = spawn(self.info)
        self._proc = proc
        generation = self._generation
        try:
            send_message(parent_sock, self._setup)
            hello = recv_message(parent_sock)
            if hello is not None:
                self._gpu = bool(hello.get("gpu_offload"))
                self._gpu_devices = decode_gpu_devices(hello.get("gpu_devices"))
                self._connect(parent_sock)
                self._reader = LoopReader(self._loop, parent_sock, proc, self._on_message)
                self._reader.run_until_closed(self._stopping)
        except Exception as exc:  # OSError, WireError, a malformed message: end it
            if not self._stopping.is_set():
                logger.error("engine process %d: %s; stopping it", proc.pid, exc)
            proc.kill()
        with self._lock:
            self._connected = False
            self._sock = None
            self._generation += 1
        parent_sock.close()
        returncode = proc.wait()
        wedged, self._wedged = self._wedged, None
        return ChildExit(returncode, wedged[1] if wedged and wedged[0] == generation else None)

    def _connect(self, sock: socket.socket) -> None:
        """The process is up: restore the model after a death, then send what waits."""
        with self._lock:
            self._sock = sock
            self._connected = True
            self.info.state = "failed" if self._failed else "running"
            if self._stopping.is_set():  # shutdown began while it started
                self._writer.send(self._generation, {"op": "stop"})
                return
            if self.info.restarts and self._model is not None and not self._failed:
                self.info.state = "restarting"
                model = self._model
                seq = next(self._counter)
                message = {"op": "load", "id": seq, "model_id": model.model_id, "path": model.path}
                self._work.add(Pending(seq, message, done=Future(), internal=True, sent=True))
                self._writer.send(self._generation, message)
                return  # the rest waits for the restore (see _on_done)
            self._send_waiting()

    def _send_waiting(self) -> None:
        for pending in self._work.take_unsent():
            self._writer.send(self._generation, pending.message)

    def _on_message(self, message: dict[str, Any]) -> None:
        self._watcher.watch.progressed()  # any message: the engine thread moves (pong too)
        if message.get("op") == "events":
            self._on_events(message)
        elif message.get("op") == "done":
            self._on_done(message)

    def _on_events(self, message: dict[str, Any]) -> None:
        out: list[tuple[GenerationHandle, Event]] = []
        with self._lock:
            for key, data in message["items"]:
                event = decode_event(data)
                handle = self._work.route(int(key), event)
                if handle is not None:
                    out.append((handle, event))
            if "stats" in message:
                self._counters.live = EngineStats(**message["stats"])
            if self._counters.live.tokens_generated_total:
                self._policy.progressed()  # this process has served tokens: not a crash loop
        post_all(out)

    def _on_done(self, message: dict[str, Any]) -> None:
        with self._lock:
            pending = self._work.pop(int(message["id"]))
            if pending is None or pending.done is None:
                return
            ok = bool(message.get("ok"))
            if pending.op == "load" and ok:
                self._model = decode_model(message["model"])
                self._failed = False
                if not pending.internal:
                    self._policy.progressed()  # a new model starts a new count
            elif pending.op == "load" and pending.internal:
                self._mark_failed(f"could not reload it: {message['error'].get('message')}")
            elif pending.op == "unload" and ok:
                self._model = None
            # (a failed user load: the engine process put the previous model back itself)
            if pending.internal:
                self.info.state = "running"
                self._send_waiting()
        settle(pending.done, pending.op, message)

    # ---- wedges (wedge.py) ----------------------------------------------------------
    def _wedge_target(self) -> WedgeTarget | None:
        with self._lock:
            if not self._connected or self._sock is None or self.info.pid is None:
                return None
            owed = self._work.owed()
            return WedgeTarget(owed, self.info.pid, self._sock, self._generation)

    def _claim_wedged(self, target: WedgeTarget, quiet_s: float) -> bool:
        """The watcher is about to kill it: remember why, unless it ended meanwhile."""
        with self._lock:
            if target.generation != self._generation or self._stopping.is_set():
                return False
            self._wedged = (target.generation, quiet_s)
            return True

    # ---- deaths ---------------------------------------------------------------------
    def _on_death(self, exit_: ChildExit) -> None:
        """Ends what the dead process was running, keeps the queue, prepares the restart."""
        cause = exit_.description
        tail = self.info.headlines()
        logger.error(
            "engine process %s died (%s); restarting it%s",
            self.info.pid,
            cause,
            f"; its last output: {tail}" if tail else "",
            extra={"data": exit_.details()},
        )
        self._counters.died(memory=exit_.looks_like_memory)
        with self._lock:
            self.info.died(cause, wedged=exit_.wedged_s is not None)
            serving = self._model.model_id if self._model is not None else None
            outcome = self._work.after_death(exit_, serving)
            if outcome.unloaded:
                self._model = None  # the process that held it is gone
            if not outcome.died_at_user_load:
                self._policy.died()  # counts against the model being served
            if self._policy.give_up:
                self._mark_failed(
                    f"died {self._policy.streak} times in a row at load or before its first "
                    f"token ({cause})",
                    exit_,
                )
        for done, error in outcome.resolved:
            if error is None:
                done.set_result(None)
            else:
                done.set_exception(error)

    def _mark_failed(self, cause: str, exit_: ChildExit | None = None) -> None:
        """Under the lock: stop restarting this model; the next process starts idle."""
        model_id = self._model.model_id if self._model is not None else None
        error = crash_loop_error(model_id, cause, exit_)
        logger.error("%s", error.message)
        self._failed = True
        self._model = None
        self.info.failure = error.message
        self.info.state = "failed"
        self._policy.progressed()
        self._work.fail_waiting(error, operations=model_id is None)

    def _fail_all(self, error: BrowserLLMError) -> None:
        with self._lock:
            items = self._work.clear()
        for pending in items:
            if pending.handle is not None:
                pending.handle.post(Failed(error))
            elif pending.done is not None and not pending.done.done():
                pending.done.set_exception(error)
