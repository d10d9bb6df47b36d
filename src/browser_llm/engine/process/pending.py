"""What the engine process owes the server: requests and model operations in arrival
order, and what becomes of each when the process dies.

Not thread-safe: ProcessEngine holds its lock around every call.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any, Literal

from browser_llm.core.errors import (
    BrowserLLMError,
    CancelledError,
    InferenceError,
    ModelLoadFailedError,
)
from browser_llm.engine.base import (
    Admitted,
    Event,
    Failed,
    Finished,
    GenerationHandle,
    GenerationRequest,
    Started,
)
from browser_llm.engine.process.exits import ChildExit

__all__ = ["DeathOutcome", "Pending", "PendingWork", "ProcessHandle"]


class ProcessHandle(GenerationHandle):
    """A request's handle whose cancel also reaches the engine process."""

    def __init__(
        self,
        request: GenerationRequest,
        loop: asyncio.AbstractEventLoop,
        on_cancel: Callable[[ProcessHandle], None],
    ) -> None:
        super().__init__(request, loop)
        self._on_cancel = on_cancel
        self.key = 0  # its Pending.seq

    def cancel(self) -> None:
        super().cancel()
        self._on_cancel(self)


@dataclass
class Pending:
    """A request or model operation the engine process has not finished."""

    seq: int  # arrival order (requests and operations share one counter)
    message: dict[str, Any]
    handle: GenerationHandle | None = None
    done: Future[Any] | None = None  # model operations
    sent: bool = False
    admitted: bool = False
    started: bool = False
    internal: bool = False  # a restore after a death, not a user's load

    @property
    def op(self) -> str:
        return str(self.message["op"])


@dataclass
class DeathOutcome:
    died_at_user_load: bool  # the death is the new model's fault, not the served one's
    unloaded: bool  # an unload was under way: the model is gone with the process
    resolved: list[tuple[Future[Any], BaseException | None]]  # model operations, to settle


class PendingWork:
    def __init__(self) -> None:
        self._items: dict[int, Pending] = {}

    def __iter__(self) -> Iterator[Pending]:
        return iter(list(self._items.values()))

    def add(self, pending: Pending) -> None:
        self._items[pending.seq] = pending

    def get(self, seq: int) -> Pending | None:
        return self._items.get(seq)

    def pop(self, seq: int) -> Pending | None:
        return self._items.pop(seq, None)

    def clear(self) -> list[Pending]:
        items = list(self._items.values())
        self._items.clear()
        return items

    @property
    def loading(self) -> bool:
        return any(p.done is not None and p.op == "load" for p in self._items.values())

    def owed(self) -> Literal["work", "load"] | None:
        """What the process owes an answer for (engine/process/wedge.py): a load, other work, or
        nothing (idle, or only work it has not been sent)."""
        sent = [p for p in self._items.values() if p.sent]
        if any(p.done is not None and p.op == "load" for p in sent):
            return "load"
        return "work" if sent else None

    def take_unsent(self) -> list[Pending]:
        """What the process has not seen, in arrival order, now marked sent."""
        unsent = sorted((p for p in self._items.values() if not p.sent), key=lambda p: p.seq)
        for pending in unsent:
            pending.sent = True
        return unsent

    def route(self, key: int, event: Event) -> GenerationHandle | None:
        """The handle an event from the process goes to, or None to drop it."""
        pending = self._items.get(key)
        if pending is None or pending.handle is None:
            return None
        if isinstance(event, Admitted):
            if pending.admitted:
                return None  # a request run again after a restart was admitted before
            pending.admitted = True
        elif isinstance(event, Started):
            pending.started = True
        elif isinstance(event, Finished | Failed):
            del self._items[key]
        return pending.handle

    def after_death(self, exit_: ChildExit, serving: str | None) -> DeathOutcome:
        """Running requests fail, queued ones wait for the next process, model operations
        settle. `serving` is the model the restarted process will load again."""
        running = any(p.started for p in self._items.values() if p.handle is not None)
        user_load = any(p.sent and not p.internal and p.op == "load" for p in self._items.values())
        outcome = DeathOutcome(user_load and not running, False, [])
        for pending in list(self._items.values()):
            if pending.handle is not None:
                error = self._request_after_death(pending, exit_)
                if error is not None:
                    del self._items[pending.seq]
                    pending.handle.post(Failed(error))
            elif pending.done is not None and pending.sent:
                failure = self._operation_after_death(pending, exit_, outcome, serving)
                if pending.sent:  # settled (unsent: kept for the next process)
                    del self._items[pending.seq]
                    outcome.resolved.append((pending.done, failure))
        return outcome

    @staticmethod
    def _request_after_death(pending: Pending, exit_: ChildExit) -> BrowserLLMError | None:
        if pending.started:
            return InferenceError(
                f"the engine process died ({exit_.description}) while running this request; "
                "the server is restarting it",
                exit_.details(),
            )
        assert pending.handle is not None
        if pending.handle.cancelled:
            return CancelledError("cancelled while queued")
        pending.sent = False  # runs again on the restarted process
        return None

    @staticmethod
    def _operation_after_death(
        pending: Pending, exit_: ChildExit, outcome: DeathOutcome, serving: str | None
    ) -> BaseException | None:
        """Its error, or None: done after all (an unload), or kept for the next process
        (then marked unsent)."""
        if pending.internal:
            return ModelLoadFailedError("the engine process died restoring the model")
        if pending.op in ("tokenize", "detokenize"):
            pending.sent = False  # harmless to repeat: the next process answers it
            return None
        if pending.op == "unload":
            outcome.unloaded = True
            return None
        if pending.op == "embed":  # it may be what crashed the process: not run again
            return InferenceError(
                f"the engine process died ({exit_.description}) while computing embeddings; "
                "the server is restarting it",
                exit_.details(),
            )
        if outcome.died_at_user_load:
            model_id = pending.message["model_id"]
            return ModelLoadFailedError(
                f"llama.cpp crashed loading model '{model_id}' ({exit_.description})"
                + (f"; the server is serving '{serving}' again" if serving else "")
                + (f". {exit_.hint}" if exit_.hint else ""),
                {**exit_.details(), "model_id": model_id},
            )
        pending.sent = False  # it waited behind the running requests: send it again
        return None

    def fail_waiting(self, error: BrowserLLMError, operations: bool) -> None:
        """Ends requests not yet started (and, if asked, unsent model operations)."""
        for pending in list(self._items.values()):
            if pending.handle is not None and not pending.started:
                del self._items[pending.seq]
                pending.handle.post(Failed(error))
            elif operations and pending.done is not None and not pending.sent:
                del self._items[pending.seq]  # no process comes up to run it
                pending.done.set_exception(error)
