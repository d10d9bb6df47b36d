"""Fault injection for reliability tests: TESTING ONLY, off unless
BROWSER_LLM_FAULT_INJECT=true.

With it on, the server builds this engine instead of LlamaEngine. A request whose
prompt (or a chat message) contains a marker makes the decode step fail once that
request has generated N tokens:

- ``[[fault:decode]]`` / ``[[fault:decode@N]]``: llama_decode "returns" -1, as a real
  decode failure would: every sequence in that step fails with INFERENCE_ERROR.
- ``[[fault:raise@N]]``: the decode step raises an unexpected exception (the engine's
  last-resort handler fails the running sequences with INTERNAL_ERROR and carries on).
- ``[[fault:hang@N]]``: the decode step never returns (the engine thread sleeps forever),
  a wedged engine (engine/process/wedge.py): the process lives on and answers nothing.
- ``[[fault:sigsegv@N]]``, ``sigill``, ``sigkill``, ``abort``: the engine process is
  killed by that signal inside the decode step, as a llama.cpp crash (or the OOM
  killer) would kill it. ``@0`` fires on the step that reads the prompt (prefill).
- a model id containing one of the signal markers: loading it kills the engine
  process that way (``abort`` is what a failed GGML_ASSERT does).

Nothing else changes, so the server's recovery from a fault is the real one.
"""

from __future__ import annotations

import re
import signal
import threading
import time
from dataclasses import dataclass
from typing import Any

from browser_llm.engine.base import GenerationRequest
from browser_llm.engine.native.engine import LlamaEngine
from browser_llm.engine.native.model import LlamaModel

__all__ = ["FaultInjectingEngine", "InjectedFault", "fault_of"]

_KINDS = "decode|raise|hang|sigsegv|sigill|sigkill|abort"
_MARKER = re.compile(rf"\[\[fault:({_KINDS})(?:@(\d{{1,6}}))?\]\]")
_SIGNALS = {
    "sigsegv": signal.SIGSEGV,
    "sigill": signal.SIGILL,
    "sigkill": signal.SIGKILL,
    "abort": signal.SIGABRT,
}


class InjectedFault(RuntimeError):
    """The exception a ``raise`` marker throws inside the decode step."""


@dataclass(frozen=True)
class Fault:
    kind: str  # "decode", "raise", "hang" or a signal name (see _SIGNALS)
    after_tokens: int


def fault_of(request: GenerationRequest) -> Fault | None:
    return _fault_in([request.prompt or ""] + [m.content for m in request.messages or ()])


def _fault_in(texts: list[str]) -> Fault | None:
    for text in texts:
        match = _MARKER.search(text)
        if match:
            return Fault(match.group(1), int(match.group(2) or 0))
    return None


def _die(kind: str) -> None:
    """Raises the signal in this thread, as a fault in llama.cpp's code would: delivered
    before the call returns, so nothing after it runs (a process-directed kill() may land
    on another thread while this one carries on)."""
    signal.pthread_kill(threading.get_ident(), _SIGNALS[kind])
    time.sleep(30)  # not reached: the default action ends the process


def _hang() -> None:
    """Blocks this thread for good, as a step stuck in a driver or a lock would."""
    while True:
        time.sleep(3600)


class FaultInjectingEngine(LlamaEngine):
    """LlamaEngine whose decode step fails on request (see the module docstring)."""

    def _llama_decode(self, ctx: Any, batch: Any) -> int:
        for seq in self._running:
            fault = fault_of(seq.handle.request)
            if fault is not None and seq.n_generated >= fault.after_tokens:
                if fault.kind == "raise":
                    raise InjectedFault("injected engine fault")
                if fault.kind == "hang":
                    _hang()
                if fault.kind in _SIGNALS:
                    _die(fault.kind)
                return -1
        return super()._llama_decode(ctx, batch)

    def _open_model(self, model_id: str, path: str) -> LlamaModel:
        fault = _fault_in([model_id])
        if fault is not None and fault.kind in _SIGNALS:
            _die(fault.kind)
        return super()._open_model(model_id, path)
