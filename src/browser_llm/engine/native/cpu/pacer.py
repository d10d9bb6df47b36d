"""The engine's side of a busy machine: the thread governor between decode steps, the step
watchdog inside them, and the step-time reading. Engine-thread use only."""

from __future__ import annotations

from collections.abc import Callable

from browser_llm.engine.native.cpu.governor import ThreadGovernor
from browser_llm.engine.native.cpu.watchdog import StepWatchdog
from browser_llm.engine.native.model import LlamaModel

__all__ = ["CpuPacer"]


class CpuPacer:
    def __init__(self, governor: ThreadGovernor) -> None:
        self.governor = governor
        self.step_s = 0.0  # moving average of a decode step's wall time
        self._watchdog = (
            StepWatchdog(*governor.readers, lambda: governor.threads) if governor.enabled else None
        )

    @property
    def idle_wait_s(self) -> float | None:
        """How long the idle engine thread may block: it wakes to read the CPU load, so
        the first step of the next request already runs on the cores left free."""
        return self.governor.interval_s if self.governor.enabled else None

    @property
    def reduced(self) -> bool:
        """Running on fewer threads than configured (others held a core a moment ago): a
        prompt is then read in small chunks, so a core given back is used from the next
        chunk on, not after the whole prompt."""
        governor = self.governor
        return governor.enabled and governor.threads < governor.configured

    def attach(self, model: LlamaModel) -> None:
        """A new model's context: the current thread count, and the watchdog's flag."""
        model.set_threads(self.governor.threads)
        if self._watchdog is not None:
            self._watchdog.install(model.ctx)

    def between_steps(self, model: LlamaModel | None) -> None:
        threads = self.governor.observe()
        if threads is not None and model is not None:
            model.set_threads(threads)

    def step_took(self, seconds: float) -> None:
        self.step_s += 0.1 * (seconds - self.step_s)

    def decode(self, model: LlamaModel, call: Callable[[], int]) -> int:
        """`call` (one llama_decode), watched; a step the watchdog ended (stalled by other
        processes) runs again on one thread fewer, from the cells it had before."""
        rc = self._watched(call)
        while rc == 2 and self._watchdog is not None and self._watchdog.fired:
            model.forget_batch()  # ubatches that finished before the abort keep their cells
            model.set_threads(self.governor.take_core())
            rc = self._watched(call)
        return rc

    def _watched(self, call: Callable[[], int]) -> int:
        watchdog = self._watchdog
        if watchdog is None:
            return call()
        watchdog.begin()
        try:
            return call()
        finally:
            watchdog.end()

    def readings(self) -> dict[str, float | int]:
        """The EngineStats fields this owns."""
        return {
            "threads": self.governor.threads,
            "threads_max": self.governor.configured,
            "foreign_load": self.governor.load.cores,
            "step_ms": round(self.step_s * 1000, 2),
        }
