"""How many threads llama.cpp may use right now: fewer while other processes hold cores.

llama.cpp's CPU threads meet at a barrier after every graph node, a few hundred times a
token. When another process holds one of the cores, each barrier waits for a time slice
and a 2-thread decode falls from ~80 to ~0.4 tok/s, while 1 thread keeps ~45
(shared/ENGINEERING-NOTES.md). So the engine watches how much CPU *other* processes use
(the machine's busy time minus its own and its server's) and runs on the cores they leave
free; when they go, it takes the cores back within one sampling interval. Nothing is
probed by running slow steps: the readings are /proc's.

Foreign CPU alone would also count a light, bursty program (the client reading eight
streams uses half a core) that costs two threads little. So a core counts as taken only
with evidence that our own threads wait for one: their run-queue delay
(/proc/self/task/*/schedstat) over the interval, or a whole core busy elsewhere (a
spinning neighbour seen while idle).
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import psutil

__all__ = [
    "ForeignLoad",
    "ThreadGovernor",
    "foreign_cpu_reader",
    "lower_priority_yields",
    "own_wait_reader",
]

logger = logging.getLogger(__name__)

# Hysteresis, in cores of foreign load: a core counts as taken from 0.5 of a core used by
# others, and as given back below 0.25 (a light, bursty neighbour does not flap it).
_TAKE = 0.5
_RELEASE = 0.75
# Evidence of contention: our threads waited this many thread-seconds per second for a
# CPU, or others kept this many cores busy.
_WAITED = 0.2
_WHOLE_CORE = 0.9
INTERVAL_S = 0.25


@dataclass(frozen=True)
class ForeignLoad:
    cores: float  # CPU used by other processes over the last interval, in cores
    busy_cores: int  # the cores counted as taken (with hysteresis)


def lower_priority_yields() -> bool:
    """Whether processes of a lower priority (a higher nice value) give their cores to ours:
    when we run at nice 0 or below and the kernel's autogroup is off (with it on, as on
    most desktops, nice only counts inside one login session, and a niced build started
    from another terminal takes its full share)."""
    try:
        with open("/proc/sys/kernel/sched_autogroup_enabled") as setting:
            autogroup = setting.read().strip() != "0"
    except OSError:
        autogroup = False  # a kernel without autogroup
    return not autogroup and os.getpriority(os.PRIO_PROCESS, 0) <= 0


def foreign_cpu_reader(
    own_pids: list[int],
    cpu_times: Callable[[], Any] = psutil.cpu_times,
    niced_yield: bool | None = None,
) -> Callable[[], float]:
    """A function giving the CPU seconds used so far by every process but `own_pids`
    (busy = all but idle and iowait; steal counts as busy: a hypervisor took it). Time of
    niced processes is left out when they yield to us (`niced_yield`, default: read from
    the kernel): a background job at nice 19 costs our threads nothing."""
    own = [psutil.Process(pid) for pid in own_pids]
    skip_niced = lower_priority_yields() if niced_yield is None else niced_yield

    def read() -> float:
        times = cpu_times()
        busy = float(sum(times) - times.idle - getattr(times, "iowait", 0.0))
        if skip_niced:
            busy -= getattr(times, "nice", 0.0)
        mine = 0.0
        for process in own:
            try:
                t = process.cpu_times()
                mine += t.user + t.system
            except psutil.Error:
                pass  # the server process is gone: the engine process ends soon
        return busy - mine

    return read


def own_wait_reader() -> Callable[[], float]:
    """Seconds this process's threads have spent runnable but waiting for a CPU."""

    def read() -> float:
        total = 0
        for task in os.listdir("/proc/self/task"):
            try:
                with open(f"/proc/self/task/{task}/schedstat") as stat:
                    total += int(stat.read().split()[1])
            except (OSError, IndexError, ValueError):
                pass  # a thread that just ended, or no schedstat in this kernel
        return total / 1e9

    return read


class ThreadGovernor:
    """Decides the thread count between decode steps (call `observe` before each)."""

    def __init__(
        self,
        configured: int,
        cpus: int | None = None,
        read_foreign: Callable[[], float] | None = None,
        read_wait: Callable[[], float] | None = None,
        clock: Callable[[], float] = time.monotonic,
        interval_s: float = INTERVAL_S,
        adaptive: bool = True,
    ) -> None:
        self.configured = configured
        self._adaptive = adaptive
        self._cpus = cpus or len(os.sched_getaffinity(0))
        self._read = read_foreign or foreign_cpu_reader([os.getpid()])
        self._read_wait = read_wait or own_wait_reader()
        self._clock = clock
        self.interval_s = interval_s
        self.threads = configured
        self.load = ForeignLoad(0.0, 0)
        self.changes = 0
        self._last: tuple[float, float, float] | None = None

    @property
    def readers(self) -> tuple[Callable[[], float], Callable[[], float]]:
        """(foreign CPU seconds, our run-queue wait seconds): for the step watchdog."""
        return self._read, self._read_wait

    def take_core(self) -> int:
        """A step was stalled by other processes (cpu/watchdog.py): one core fewer from now;
        the readings give it back once they leave."""
        busy = min(self._cpus - 1, self.load.busy_cores + 1)
        self.load = ForeignLoad(self.load.cores, busy)
        wanted = max(1, min(self.configured, self._cpus - busy))
        if wanted != self.threads:
            logger.info("llama.cpp threads %d -> %d: a step was stalled", self.threads, wanted)
            self.threads = wanted
            self.changes += 1
        return self.threads

    @property
    def enabled(self) -> bool:
        return self._adaptive and self.configured > 1

    def observe(self) -> int | None:
        """The new thread count when it should change, else None. With adaptive threads
        off it still reads the load (for /status), and never changes the count."""
        if self.configured <= 1:
            return None
        now = self._clock()
        if self._last is not None and now - self._last[0] < self.interval_s:
            return None
        used, waited = self._read(), self._read_wait()
        last, self._last = self._last, (now, used, waited)
        if last is None:
            return None
        span = max(1e-6, now - last[0])
        cores = max(0.0, (used - last[1]) / span)
        wait = max(0.0, (waited - last[2]) / span)
        logger.debug("foreign load %.2f cores, our threads waited %.2f", cores, wait)
        contended = wait >= _WAITED or cores >= _WHOLE_CORE
        busy = self.load.busy_cores
        while contended and cores >= busy + _TAKE and busy < self._cpus - 1:
            busy += 1
        while busy > 0 and cores <= busy - _RELEASE:
            busy -= 1
        self.load = ForeignLoad(round(cores, 2), busy)
        if not self._adaptive:
            return None
        wanted = max(1, min(self.configured, self._cpus - busy))
        if wanted == self.threads:
            return None
        logger.info(
            "llama.cpp threads %d -> %d: other processes use %.1f of %d cores",
            self.threads,
            wanted,
            cores,
            self._cpus,
        )
        self.threads = wanted
        self.changes += 1
        return wanted
