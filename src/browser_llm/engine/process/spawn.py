"""Starting the engine process, what /status shows of it, and its output: log records
re-logged here under their own logger names, native lines (crash reports, asserts) kept
for the death report and /debug/logs."""

from __future__ import annotations

import json
import logging
import socket
import subprocess
import sys
import threading
from collections import deque
from dataclasses import dataclass, field
from typing import IO

from browser_llm.engine.process.wire import LOG_PREFIX

__all__ = ["EngineProcessInfo", "spawn", "wait_or_kill"]

logger = logging.getLogger(__name__)

_child_logger = logging.getLogger("browser_llm.engine.process.child")
_TAIL = 40  # native lines kept for the death report


@dataclass
class EngineProcessInfo:
    pid: int | None = None
    state: str = "starting"  # starting | running | restarting | failed | stopped
    restarts: int = 0
    wedged_restarts: int = 0  # of those, killed by the server for making no progress
    last_exit: str | None = None
    failure: str | None = None
    native_tail: deque[str] = field(default_factory=lambda: deque(maxlen=_TAIL))

    def headlines(self, n: int = 5) -> str:
        """The last unindented native lines: a crash report's headlines, not its frames."""
        heads = [line for line in self.native_tail if not line[:1].isspace()]
        return " | ".join(heads[-n:])

    def died(self, cause: str, wedged: bool) -> None:
        """The process ended (`wedged`: the server killed it for making no progress)."""
        self.last_exit = cause
        self.restarts += 1
        self.wedged_restarts += wedged
        self.state = "restarting"
        self.pid = None

    def as_dict(self) -> dict[str, object]:
        return {
            "pid": self.pid,
            "state": self.state,
            "restarts": self.restarts,
            "wedged_restarts": self.wedged_restarts,
            "last_exit": self.last_exit,
            "failure": self.failure,
        }


def spawn(info: EngineProcessInfo) -> tuple[subprocess.Popen[bytes], socket.socket]:
    """Starts `python -m browser_llm.engine.process.child FD`; returns it and our end of
    its socket. It stays in the server's process group (process_child ignores SIGINT and
    SIGTERM) and its output is read by a thread of its own."""
    ours, theirs = socket.socketpair()
    try:
        proc = subprocess.Popen(
            [sys.executable, "-m", "browser_llm.engine.process.child", str(theirs.fileno())],
            pass_fds=[theirs.fileno()],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
    except BaseException:
        ours.close()
        raise
    finally:
        theirs.close()
    info.pid = proc.pid
    assert proc.stdout is not None
    threading.Thread(
        target=_forward_output, args=(proc.stdout, info), name="engine-output", daemon=True
    ).start()
    return proc, ours


def _forward_output(stream: IO[bytes], info: EngineProcessInfo) -> None:
    """Reads the engine process's stdout+stderr until it closes (a thread of its own)."""
    for raw in stream:
        line = raw.decode("utf-8", errors="replace").rstrip("\n")
        if line.startswith(LOG_PREFIX):
            try:
                level, name, text = line[len(LOG_PREFIX) :].split("\t", 2)
                logging.getLogger(name).log(int(level), "%s", json.loads(text))
                continue
            except ValueError:
                pass
        if line.strip():
            info.native_tail.append(line)
            _child_logger.warning("%s", line)
    stream.close()


def wait_or_kill(proc: subprocess.Popen[bytes], timeout_s: float) -> None:
    """Waits for a process told to stop; kills it when it does not in time."""
    try:
        proc.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        logger.warning("engine process %d did not stop; killing it", proc.pid)
        proc.kill()
        proc.wait()
