"""The thread governor on a scripted clock and CPU reading: fewer threads while other
processes hold cores, all of them back once they leave, no flapping on light load."""

from __future__ import annotations

import collections
import os

import pytest

from browser_llm.engine.native.cpu.governor import ThreadGovernor, foreign_cpu_reader


class Machine:
    """Foreign CPU seconds that grow at `load` cores while the clock runs."""

    def __init__(self) -> None:
        self.now = 0.0
        self.used = 0.0
        self.waited = 0.0  # our threads' run-queue delay

    def clock(self) -> float:
        return self.now

    def read(self) -> float:
        return self.used

    def wait(self) -> float:
        return self.waited

    def run(self, seconds: float, load: float, wait: float | None = None) -> None:
        """`load` foreign cores; our threads wait `wait` thread-seconds per second (by
        default: as spinning neighbours make them, about as much as the load)."""
        self.now += seconds
        self.used += seconds * load
        self.waited += seconds * (load if wait is None else wait)


def _governor(machine: Machine, configured: int = 2, cpus: int = 2) -> ThreadGovernor:
    return ThreadGovernor(
        configured, cpus, machine.read, machine.wait, machine.clock, interval_s=0.25
    )


def _steps(
    gov: ThreadGovernor, machine: Machine, load: float, seconds: float, wait: float | None = None
) -> list[int]:
    """Threads after each 50 ms step for `seconds` at `load` foreign cores."""
    seen = []
    for _ in range(round(seconds / 0.05)):
        machine.run(0.05, load, wait)
        gov.observe()
        seen.append(gov.threads)
    return seen


def test_one_busy_neighbour_takes_a_core_and_gives_it_back() -> None:
    machine = Machine()
    gov = _governor(machine)
    assert _steps(gov, machine, 0.0, 1.0)[-1] == 2
    busy = _steps(gov, machine, 1.0, 1.0)
    assert busy[-1] == 1 and busy.index(1) <= 10  # within two sampling intervals (0.5 s)
    assert gov.load.busy_cores == 1 and gov.load.cores >= 0.9
    back = _steps(gov, machine, 0.0, 1.0)
    assert back[-1] == 2 and back.index(2) <= 10  # the neighbour left: back within 0.5 s
    assert gov.changes == 2


def test_light_or_bursty_load_does_not_flap() -> None:
    machine = Machine()
    gov = _governor(machine)
    for load in [0.3, 0.1, 0.4, 0.2] * 5:
        _steps(gov, machine, load, 0.25)
    assert gov.threads == 2 and gov.changes == 0
    _steps(gov, machine, 0.6, 1.0)  # a core is taken from half a core on...
    assert gov.threads == 1
    _steps(gov, machine, 0.4, 1.0)  # ...and given back only below a quarter
    assert gov.threads == 1
    _steps(gov, machine, 0.1, 1.0)
    assert gov.threads == 2


def test_always_one_thread_and_never_above_the_configured_count() -> None:
    machine = Machine()
    gov = _governor(machine, configured=6, cpus=8)
    _steps(gov, machine, 0.0, 1.0)
    assert gov.threads == 6  # 8 cores free, 6 configured
    _steps(gov, machine, 3.0, 1.0)
    assert gov.threads == 5  # 3 taken: 5 left
    _steps(gov, machine, 20.0, 1.0)
    assert gov.threads == 1


def test_one_configured_thread_is_left_alone() -> None:
    machine = Machine()
    gov = _governor(machine, configured=1)
    _steps(gov, machine, 2.0, 1.0)
    assert gov.threads == 1 and not gov.enabled and gov.changes == 0


def test_a_busy_client_that_does_not_make_our_threads_wait_takes_no_core() -> None:
    """Eight streams' client uses half a core in bursts; our threads barely wait: two
    threads stay. The same load with our threads waiting for a CPU takes one."""
    machine = Machine()
    gov = _governor(machine)
    _steps(gov, machine, 0.7, 2.0, wait=0.05)
    assert gov.threads == 2 and gov.changes == 0
    _steps(gov, machine, 0.7, 1.0, wait=0.5)
    assert gov.threads == 1


def test_a_whole_core_busy_while_idle_is_taken_before_the_first_step() -> None:
    machine = Machine()
    gov = _governor(machine)
    _steps(gov, machine, 1.0, 1.0, wait=0.0)  # idle engine: nothing of ours waits
    assert gov.threads == 1


def test_niced_processes_count_only_when_they_do_not_yield() -> None:
    """A background job at nice 19 (its time is /proc/stat's `nice`) takes no core from a
    nice-0 engine when the kernel lets priorities count across sessions (autogroup off)."""
    times = collections.namedtuple("times", "user nice system idle iowait")
    sample = [times(10.0, 4.0, 1.0, 20.0, 0.0)]
    yielding = foreign_cpu_reader([os.getpid()], lambda: sample[0], niced_yield=True)
    counting = foreign_cpu_reader([os.getpid()], lambda: sample[0], niced_yield=False)
    before = (yielding(), counting())
    sample[0] = times(10.0, 5.0, 1.0, 20.0, 0.0)  # one second of a niced neighbour
    assert yielding() - before[0] <= 0.0
    assert counting() - before[1] == pytest.approx(1.0, abs=0.2)
