"""Every process a test starts goes through here, and dies with the test runner.

`spawn()` starts a command in a process group of its own (so a test stops it, and all it
started, by group id) and registers that group with a watchdog: one small process per test
runner, in a session of its own, that ignores SIGINT/SIGTERM/SIGHUP and SIGKILLs every
group still registered as soon as the runner is gone, however it went (normal exit,
SIGTERM, SIGKILL, a crash). It learns of the runner's death two ways: the runner's end of
its stdin pipe closes, and a pidfd on the runner's pid becomes readable.

A server's engine process sits in the server's group, so it goes with it even when it is
stopped (SIGSTOP) and could not read its socket's end of file.

`stop()` ends a group (SIGTERM, then SIGKILL after a bound) and deregisters it; `run()` is
`subprocess.run` for a command that should also not outlive the runner. `adopt()` registers
processes a library started in the runner's own group (Ray's), one by one.

Run as a script, this file is the watchdog itself (`python tests/processes.py RUNNER_PID...`).
"""

from __future__ import annotations

import atexit
import contextlib
import os
import select
import signal
import subprocess
import sys
import threading
from collections.abc import Iterable, Sequence
from typing import IO, Any

_lock = threading.Lock()
_watchdog: subprocess.Popen[bytes] | None = None
_watchdog_owner = 0  # the pid that started it (a forked runner needs one of its own)


def _watchdog_pipe() -> IO[bytes]:
    global _watchdog, _watchdog_owner
    if _watchdog is None or _watchdog_owner != os.getpid() or _watchdog.poll() is not None:
        runners = [os.getpid()]
        if os.environ.get("PYTEST_XDIST_WORKER"):
            # A pytest-xdist worker outlives a killed controller until its test ends: the
            # watchdog watches the controller too, and then kills this worker as well.
            runners.append(os.getppid())
        _watchdog = subprocess.Popen(
            [sys.executable, os.path.abspath(__file__), *map(str, runners)],
            stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            start_new_session=True,  # a signal to the runner's process group misses it
        )
        _watchdog_owner = os.getpid()
        assert _watchdog.stdin is not None
        if len(runners) > 1:
            line = f"+process {os.getpid()} {_start_time(os.getpid())}\n"
            _watchdog.stdin.write(line.encode())
    assert _watchdog.stdin is not None
    return _watchdog.stdin


def _tell(line: str) -> None:
    with _lock:
        pipe = _watchdog_pipe()
        pipe.write(f"{line}\n".encode())
        pipe.flush()


def _start_time(pid: int) -> str:
    """The process's start time in clock ticks since boot (with its pid, one process)."""
    with open(f"/proc/{pid}/stat", encoding="ascii") as stat:
        return stat.read().rsplit(")", 1)[1].split()[19]


@atexit.register
def _close_watchdog() -> None:
    """A normal exit: every group was stopped already; the watchdog sees the end of file."""
    if _watchdog is not None and _watchdog_owner == os.getpid():
        with contextlib.suppress(OSError):
            _watchdog.stdin.close()  # type: ignore[union-attr]
        with contextlib.suppress(subprocess.TimeoutExpired):
            _watchdog.wait(timeout=10)


def watchdog_pid() -> int | None:
    return _watchdog.pid if _watchdog is not None and _watchdog_owner == os.getpid() else None


def spawn(argv: Sequence[str], **kwargs: Any) -> subprocess.Popen[Any]:
    """`subprocess.Popen(argv, **kwargs)` in a new process group, killed if the runner dies."""
    kwargs.pop("start_new_session", None)
    with _lock:
        _watchdog_pipe()  # running before the child exists, so no window without it
    process: subprocess.Popen[Any] = subprocess.Popen(argv, start_new_session=True, **kwargs)
    _tell(f"+group {process.pid}")
    return process


def stop(process: subprocess.Popen[Any], timeout: float = 30) -> None:
    """SIGTERM to the process's group, SIGKILL to it after `timeout` s; deregisters it."""
    try:
        if process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
                process.wait()
    finally:
        forget(process)


def forget(process: subprocess.Popen[Any]) -> None:
    """Deregisters a group whose leader has been waited for (it may not be reused)."""
    _tell(f"-group {process.pid}")


def adopt(pids: Iterable[int]) -> None:
    """Processes a library started outside spawn() (Ray's), killed one by one if the runner
    dies; each is known by its pid and start time, so a reused pid is never taken for it."""
    for pid in pids:
        with contextlib.suppress(OSError):
            _tell(f"+process {pid} {_start_time(pid)}")


def release(pids: Iterable[int]) -> None:
    for pid in pids:
        _tell(f"-process {pid}")


def descendants() -> set[int]:
    """The pids of every process below this one (for adopt())."""
    found: set[int] = set()
    todo = [os.getpid()]
    while todo:
        pid = todo.pop()
        with contextlib.suppress(OSError):
            for task in os.listdir(f"/proc/{pid}/task"):
                with open(f"/proc/{pid}/task/{task}/children", encoding="ascii") as f:
                    children = {int(c) for c in f.read().split()} - found
                found |= children
                todo.extend(children)
    return found


def run(
    argv: Sequence[str], *, timeout: float | None = None, check: bool = False, **kwargs: Any
) -> subprocess.CompletedProcess[Any]:
    """`subprocess.run` through spawn(): on a timeout the whole group is killed."""
    if kwargs.pop("capture_output", False):
        kwargs["stdout"] = kwargs["stderr"] = subprocess.PIPE
    process = spawn(argv, **kwargs)
    try:
        try:
            out, err = process.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.communicate()
            raise
    except BaseException:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()
        raise
    finally:
        forget(process)
    result = subprocess.CompletedProcess(process.args, process.returncode, out, err)
    if check:
        result.check_returncode()
    return result


def _watch(runners: list[int]) -> None:
    """The watchdog: keeps what is registered until a runner is gone, then kills it."""
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, signal.SIG_IGN)
    groups: set[int] = set()
    singles: dict[int, str] = {}  # pid -> start time
    stdin = sys.stdin.buffer.fileno()
    buffer = b""

    def take(chunk: bytes) -> None:
        nonlocal buffer
        buffer += chunk
        *lines, buffer = buffer.split(b"\n")
        for line in lines:
            word, pid, *start = line.decode().split()
            if word == "+group":
                groups.add(int(pid))
            elif word == "-group":
                groups.discard(int(pid))
            elif word == "+process":
                singles[int(pid)] = start[0]
            elif word == "-process":
                singles.pop(int(pid), None)

    pidfds = []
    for runner in runners:
        try:
            pidfds.append(os.pidfd_open(runner))
        except ProcessLookupError:
            pidfds.append(os.open("/dev/null", os.O_RDONLY))  # gone already: always ready
    while True:
        ready, _, _ = select.select([stdin, *pidfds], [], [], 1.0)
        if stdin in ready:
            chunk = os.read(stdin, 65536)
            if not chunk:
                break  # the runner's end closed: it exited, however it went
            take(chunk)
        if any(fd in ready for fd in pidfds):
            # Gone, but something may hold its pipe: read what it sent before dying.
            os.set_blocking(stdin, False)
            with contextlib.suppress(BlockingIOError):
                while chunk := os.read(stdin, 65536):
                    take(chunk)
            break
    for pgid in groups:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pgid, signal.SIGKILL)
    for pid, start in singles.items():
        with contextlib.suppress(OSError):
            if _start_time(pid) == start:
                os.kill(pid, signal.SIGKILL)


if __name__ == "__main__":
    _watch([int(pid) for pid in sys.argv[1:]])
