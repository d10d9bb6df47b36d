"""Ends a decode step that other processes stall, so it runs again on fewer threads.

The thread governor acts between steps. A step already running when a busy neighbour
arrives waits for a time slice at each of its few hundred barriers and can take seconds
(a neighbour that arrived during a 4-stream generation stalled it for the 3 s it stayed).
llama.cpp checks an abort callback after every graph node and, when it fires, removes the
step's cells from the KV cache and returns 2, so the same batch can be decoded again.

The callback is libc's `strlen` on a two-byte flag: C calling C, no Python and no GIL on
the hot path (a ctypes callback would cost ~1 us a node, ~5% of a step). This thread sets
the flag when a step has run for much longer than usual while other processes use a core
and ours wait for one.
"""

from __future__ import annotations

import ctypes
import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Any

import llama_cpp

__all__ = ["StepWatchdog"]

logger = logging.getLogger(__name__)

_POLL_S = 0.05
_WINDOW_S = 0.25  # the readings a decision looks at
_MIN_STEP_S = 0.1  # never end a step younger than this...
_SLOWER = 5.0  # ...or less than this many times the usual step
_FOREIGN = 0.5  # cores other processes use
_WAITED = 0.2  # thread-seconds per second our threads waited for a CPU


class StepWatchdog:
    def __init__(
        self,
        read_foreign: Callable[[], float],
        read_wait: Callable[[], float],
        threads: Callable[[], int],
    ) -> None:
        self._read_foreign = read_foreign
        self._read_wait = read_wait
        self._threads = threads
        self._flag = ctypes.create_string_buffer(2)  # b"\0\0": strlen 0, do not abort
        libc = ctypes.CDLL(None)
        address = ctypes.cast(libc.strlen, ctypes.c_void_p).value
        assert address is not None
        self._callback = llama_cpp.ggml_abort_callback(address)
        self._started: float | None = None
        self._typical_s = 0.0
        self._readings: deque[tuple[float, float, float]] = deque()
        self.fired = False
        self.stalls = 0
        self._thread = threading.Thread(target=self._run, name="step-watchdog", daemon=True)

    def install(self, ctx: Any) -> None:
        """Hooks the flag into a context (each new context, at load)."""
        llama_cpp.llama_set_abort_callback(ctx, self._callback, ctypes.addressof(self._flag))
        if not self._thread.is_alive():
            self._thread.start()

    def begin(self) -> None:
        self.fired = False
        self._flag[0] = b"\0"
        self._started = time.monotonic()

    def end(self) -> None:
        started, self._started = self._started, None
        if started is not None and not self.fired:
            self._typical_s += 0.1 * (time.monotonic() - started - self._typical_s)

    def _contended(self) -> bool:
        now = time.monotonic()
        self._readings.append((now, self._read_foreign(), self._read_wait()))
        while self._readings and now - self._readings[0][0] > _WINDOW_S:
            self._readings.popleft()
        first, last = self._readings[0], self._readings[-1]
        span = last[0] - first[0]
        if span < _WINDOW_S / 2:
            return False
        foreign = (last[1] - first[1]) / span
        waited = (last[2] - first[2]) / span
        return foreign >= _FOREIGN and waited >= _WAITED

    def _run(self) -> None:
        while True:
            time.sleep(_POLL_S)
            started = self._started
            running = time.monotonic() - started if started is not None else 0.0
            if (
                started is None
                or self.fired
                or self._threads() <= 1
                or running < max(_MIN_STEP_S, _SLOWER * self._typical_s)
            ):
                self._readings.clear()  # /proc is read only while a step runs long
                continue
            if self._contended():
                logger.info(
                    "decode step stalled %.2f s by other processes (usual %.3f s): ending it "
                    "to run it again on fewer threads",
                    running,
                    self._typical_s,
                )
                self.fired = True
                self.stalls += 1
                self._flag[0] = b"x"  # strlen now 1: llama.cpp ends the step after this node
