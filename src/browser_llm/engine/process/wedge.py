"""Declares the engine process wedged: alive, owing work, and making no progress.

A crash ends the process and the supervisor sees it; a decode step (or load) that never
returns leaves it alive and every request waiting forever. Progress is any message from
the process: each decode step sends its events, and while work is owed but nothing came
for a second the server sends a `ping`, which the engine thread answers between two
steps (so a ping is answered only when the step in progress ends).

Work owed and no progress for `limit_s` (BROWSER_LLM_ENGINE_WEDGED_S) means wedged,
unless the process spent at least a quarter of that time on a CPU: a long prompt read
in one step on a slow machine computes; a blocked step (a lock, a stopped process, a
hung driver) does not. A computing step gets `_COMPUTING_FACTOR` times the limit before it
counts as wedged too (a native busy loop). While a model load is owed the bound is
`load_limit_s` (BROWSER_LLM_ENGINE_LOAD_WEDGED_S) whatever the CPU does: loads read files.
Nothing owed: never wedged, however long it has been quiet.
"""

from __future__ import annotations

import contextlib
import logging
import os
import select
import signal
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import psutil

__all__ = ["WedgeLimits", "WedgeTarget", "WedgeWatch", "WedgeWatcher", "process_cpu_s"]

logger = logging.getLogger(__name__)

Owed = Literal["work", "load"] | None

_POLL_S = 1.0
_PING_AFTER_S = 1.0  # quiet this long with work owed: ask the engine thread to answer
_COMPUTING_SHARE = 0.25  # CPU seconds per second that mean "computing", not blocked
_COMPUTING_FACTOR = 5.0


@dataclass(frozen=True)
class WedgeLimits:
    limit_s: float = 60.0
    load_limit_s: float = 600.0


class WedgeWatch:
    """The decision alone (no thread, no process): fed readings, answers wedged or not."""

    def __init__(self, limits: WedgeLimits, clock: Callable[[], float] = time.monotonic) -> None:
        self._limits = limits
        self._clock = clock
        self._last = clock()
        self._seen = self._last  # the progress time the CPU baseline belongs to
        self._cpu_base: float | None = None

    def progressed(self) -> None:
        self._last = self._clock()

    def quiet_s(self) -> float:
        return self._clock() - self._last

    def check(self, owed: Owed, cpu_s: float | None) -> float | None:
        """Seconds without progress if the process is wedged, else None."""
        now = self._clock()
        if owed is None:  # idle: the quiet time starts when work arrives
            self._last = now
        if self._last != self._seen or self._cpu_base is None:
            self._seen, self._cpu_base = self._last, cpu_s
        quiet = now - self._last
        if owed == "load":
            return quiet if quiet >= self._limits.load_limit_s else None
        if owed is None or quiet < self._limits.limit_s:
            return None
        computing = (
            cpu_s is not None
            and self._cpu_base is not None
            and cpu_s - self._cpu_base >= _COMPUTING_SHARE * quiet
        )
        if computing and quiet < _COMPUTING_FACTOR * self._limits.limit_s:
            return None
        return quiet


def process_cpu_s(pid: int) -> float | None:
    """CPU seconds a process has used (all its threads), or None if it cannot be read."""
    try:
        times = psutil.Process(pid).cpu_times()
    except psutil.Error:
        return None
    return float(times.user + times.system)


def _unread(sock: socket.socket) -> bool:
    """The process sent something the event loop has not read yet: the server is slow,
    not the engine."""
    try:
        readable, _, _ = select.select([sock], [], [], 0)
    except (OSError, ValueError):
        return False
    return bool(readable)


@dataclass(frozen=True)
class WedgeTarget:
    """What the watcher looks at, read under ProcessEngine's lock."""

    owed: Owed
    pid: int
    sock: socket.socket
    generation: int


class WedgeWatcher:
    """A thread that feeds WedgeWatch every second, pings a quiet engine process and
    kills it (SIGKILL, by pid) once it is wedged and `claim` agrees."""

    def __init__(
        self,
        limits: WedgeLimits,
        target: Callable[[], WedgeTarget | None],
        ping: Callable[[int], None],
        claim: Callable[[WedgeTarget, float], bool],
    ) -> None:
        self.watch = WedgeWatch(limits)
        self._target, self._ping, self._claim = target, ping, claim
        self._thread = threading.Thread(target=self._run, name="engine-wedge-watch", daemon=True)

    def start(self, stopping: threading.Event) -> None:
        self._stopping = stopping
        self._thread.start()

    def _run(self) -> None:
        while not self._stopping.wait(_POLL_S):
            try:
                self._check_once()
            except Exception:  # never lose the watcher
                logger.exception("checking the engine process for progress failed")

    def _check_once(self) -> None:
        target = self._target()
        if target is None or target.owed is None:
            self.watch.check(None, None)
            return
        if _unread(target.sock):
            self.watch.progressed()
        quiet = self.watch.check(target.owed, process_cpu_s(target.pid))
        if quiet is not None:
            self._kill(target, quiet)
        elif self.watch.quiet_s() >= _PING_AFTER_S:
            self._ping(target.generation)

    def _kill(self, target: WedgeTarget, quiet_s: float) -> None:
        if not self._claim(target, quiet_s):
            return  # it ended (or the server is stopping) meanwhile
        logger.error(
            "engine process %d is wedged: no progress for %.0f s with %s pending; killing it",
            target.pid,
            quiet_s,
            "a model load" if target.owed == "load" else "work",
        )
        with contextlib.suppress(ProcessLookupError):
            os.kill(target.pid, signal.SIGKILL)  # SIGKILL ends a stopped process too
        self.watch.progressed()  # the next process starts with a clean slate
