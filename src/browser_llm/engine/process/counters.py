"""The engine counters of a process engine: the live process's own, plus what the
processes that died had counted (a restart must not reset /status and /metrics)."""

from __future__ import annotations

import dataclasses

from browser_llm.engine.base import EngineStats

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
        self._dead = EngineStats(
            0,
            dead.tokens_generated_total + live.tokens_generated_total,
            dead.memory_errors + live.memory_errors + (1 if memory else 0),
            dead.slot_moves + live.slot_moves,
            prompt_cache_lookups=dead.prompt_cache_lookups + live.prompt_cache_lookups,
            prompt_cache_hits=dead.prompt_cache_hits + live.prompt_cache_hits,
            draft_tokens=dead.draft_tokens + live.draft_tokens,
            draft_tokens_accepted=dead.draft_tokens_accepted + live.draft_tokens_accepted,
        )

    def total(self, restarts: int, process: dict[str, object]) -> EngineStats:
        live, dead = self.live, self._dead
        return dataclasses.replace(
            live,
            tokens_generated_total=dead.tokens_generated_total + live.tokens_generated_total,
            memory_errors=dead.memory_errors + live.memory_errors,
            slot_moves=dead.slot_moves + live.slot_moves,
            prompt_cache_lookups=dead.prompt_cache_lookups + live.prompt_cache_lookups,
            prompt_cache_hits=dead.prompt_cache_hits + live.prompt_cache_hits,
            draft_tokens=dead.draft_tokens + live.draft_tokens,
            draft_tokens_accepted=dead.draft_tokens_accepted + live.draft_tokens_accepted,
            restarts=restarts,
            details={"process": process},
        )
