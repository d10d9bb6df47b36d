"""A generation's place in the server: counted in `in_flight` until it ends and in
`waiting` until it starts decoding, each released exactly once, whatever happens."""

from __future__ import annotations

from typing import TYPE_CHECKING

from browser_llm.engine.base import GenerationHandle

if TYPE_CHECKING:
    from browser_llm.service.generation import GenerationService

__all__ = ["QueueTicket"]


class QueueTicket:
    """One request's place: counted in `in_flight` until it ends and in `waiting` until it
    starts decoding. Both are released exactly once, whatever happens."""

    def __init__(self, service: GenerationService) -> None:
        self._service = service
        self._waiting = self._in_flight = True
        self.handle: GenerationHandle | None = None
        self.shut_down = False  # cancelled because the server is stopping
        self._model_id: str | None = None  # the model it keeps busy (keep_alive's clock)
        service.waiting += 1
        service.in_flight += 1
        service.tickets.add(self)
        service.idle.clear()

    def stop_for_shutdown(self) -> None:
        self.shut_down = True
        if self.handle is not None:
            self.handle.cancel()

    def started(self) -> None:
        if self._waiting:
            self._waiting = False
            self._service.waiting -= 1

    def hold(self, model_id: str, keep_alive_s: float | None) -> None:
        """The request runs on `model_id`: that model's keep_alive clock waits for it."""
        keep_alive = self._service.keep_alive
        if keep_alive is not None and self._model_id is None:
            self._model_id = model_id
            keep_alive.begin(model_id, keep_alive_s)

    def release(self) -> None:
        self.started()
        if self._in_flight:
            if self._model_id is not None and self._service.keep_alive is not None:
                self._service.keep_alive.end(self._model_id)
            self._in_flight = False
            self._service.in_flight -= 1
            self._service.tickets.discard(self)
            if not self._service.tickets:
                self._service.idle.set()  # wakes a drain waiting for the last one
