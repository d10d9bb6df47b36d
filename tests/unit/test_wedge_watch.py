"""The wedge decision (engine/process/wedge.py) on a fake clock: no thread, no process."""

from __future__ import annotations

from browser_llm.engine.process.exits import ChildExit
from browser_llm.engine.process.wedge import WedgeLimits, WedgeWatch


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def watch(limit: float = 10.0, load: float = 100.0) -> tuple[WedgeWatch, Clock]:
    clock = Clock()
    return WedgeWatch(WedgeLimits(limit, load), clock), clock


def test_idle_is_never_wedged() -> None:
    w, clock = watch()
    for _ in range(100):
        clock.now += 5
        assert w.check(None, 0.0) is None


def test_quiet_starts_when_work_arrives() -> None:
    w, clock = watch()
    clock.now += 1000  # idle for long...
    assert w.check(None, 0.0) is None
    clock.now += 5  # ...then work: 5 s is not 10
    assert w.check("work", 0.0) is None
    clock.now += 6
    assert w.check("work", 0.0) == 11.0


def test_progress_resets_the_wait() -> None:
    w, clock = watch()
    for _ in range(10):
        clock.now += 9
        w.progressed()
        assert w.check("work", 0.0) is None


def test_a_computing_step_gets_longer_but_not_forever() -> None:
    w, clock = watch()
    assert w.check("work", 0.0) is None
    clock.now += 30  # 30 s quiet, 20 CPU seconds: a long prompt step, not a wedge
    assert w.check("work", 20.0) is None
    clock.now += 20  # 5x the limit: a native busy loop is a wedge too
    assert w.check("work", 45.0) == 50.0


def test_a_blocked_step_uses_no_cpu() -> None:
    w, clock = watch()
    assert w.check("work", 3.0) is None
    clock.now += 10
    assert w.check("work", 3.1) == 10.0


def test_loads_have_their_own_bound() -> None:
    w, clock = watch()
    clock.now += 50
    assert w.check("load", 0.0) is None
    clock.now += 50
    assert w.check("load", 0.0) == 100.0


def test_a_wedge_reads_as_such_not_as_out_of_memory() -> None:
    exit_ = ChildExit(-9, wedged_s=61.4)
    assert exit_.description.startswith("wedged: no progress for 61 s")
    assert not exit_.looks_like_memory
    details = exit_.details()
    assert details["reason"] == "engine_wedged" and details["signal"] == "SIGKILL"
    assert "BROWSER_LLM_ENGINE_WEDGED_S" in str(details["hint"])
    assert ChildExit(-9).looks_like_memory


def test_what_the_engine_process_owes() -> None:
    from concurrent.futures import Future

    from browser_llm.engine.process.pending import Pending, PendingWork

    work = PendingWork()
    assert work.owed() is None
    work.add(Pending(1, {"op": "submit"}))  # not sent yet: the process owes nothing
    assert work.owed() is None
    work.add(Pending(2, {"op": "tokenize"}, done=Future(), sent=True))
    assert work.owed() == "work"
    work.add(Pending(3, {"op": "load"}, done=Future(), sent=True))
    assert work.owed() == "load"  # a load owed: the load bound applies
