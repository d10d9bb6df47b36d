"""The engine counters of a process engine: the live process's own, plus what the
processes that died had counted (a restart must not reset /status and /metrics)."""

from __future__ import annotations

import dataclasses

from browser_llm.engine.base import EngineStats, summed_counters

__all__ = ["ProcessCounters"]


class ProcessCounters:
    def __init__(self, threads: int) -> None:
        # The thread readings start from the settings until the process reports.
        self.live = EngineStats(0, 0, 0, threads=threads, threads_max=threads)
        self._dead = EngineStats(0, 0, 0)

    def died(self, memory: bool) -> None:
        """The live process ended: its counters carry over; nothing runs now, and the thread
        readings hold until the next process reports."""
        live, dead = self.live, self._dead
        self.live = EngineStats(0, 0, 0, threads=live.threads, threads_max=live.threads_max)
        carried = summed_counters(EngineStats(0, 0, 0), [dead, live])
        self._dead = dataclasses.replace(
            carried, running=0, memory_errors=carried.memory_errors + (1 if memory else 0)
        )

    def total(self, restarts: int, process: dict[str, object]) -> EngineStats:
        summed = summed_counters(self.live, [self._dead, self.live])  # the dead run nothing
        return dataclasses.replace(summed, restarts=restarts, details={"process": process})
