"""Fault injection for reliability tests: TESTING ONLY, off unless
BROWSER_LLM_FAULT_INJECT=true.

With it on, the server builds this engine instead of LlamaEngine. A request whose
prompt (or a chat message) contains a marker makes the decode step fail once that
request has generated N tokens:

- ``[[fault:decode]]`` / ``[[fault:decode@N]]``: llama_decode "returns" -1, as a real
  decode failure would: every sequence in that step fails with INFERENCE_ERROR.
- ``[[fault:raise@N]]``: the decode step raises an unexpected exception (the engine's
  last-resort handler fails the running sequences with INTERNAL_ERROR and carries on).

Nothing else changes, so the server's recovery from a fault is the real one.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from browser_llm.engine.base import GenerationRequest
from browser_llm.engine.llama_engine import LlamaEngine

__all__ = ["FaultInjectingEngine", "InjectedFault", "fault_of"]

_MARKER = re.compile(r"\[\[fault:(decode|raise)(?:@(\d{1,6}))?\]\]")


class InjectedFault(RuntimeError):
    """The exception a ``raise`` marker throws inside the decode step."""


@dataclass(frozen=True)
class Fault:
    kind: str  # "decode" or "raise"
    after_tokens: int


def fault_of(request: GenerationRequest) -> Fault | None:
    texts = [request.prompt or ""] + [m.content for m in request.messages or ()]
    for text in texts:
        match = _MARKER.search(text)
        if match:
            return Fault(match.group(1), int(match.group(2) or 0))
    return None


class FaultInjectingEngine(LlamaEngine):
    """LlamaEngine whose decode step fails on request (see the module docstring)."""

    def _llama_decode(self, ctx: Any, batch: Any) -> int:
        for seq in self._running:
            fault = fault_of(seq.handle.request)
            if fault is not None and seq.n_generated >= fault.after_tokens:
                if fault.kind == "raise":
                    raise InjectedFault("injected engine fault")
                return -1
        return super()._llama_decode(ctx, batch)
