"""The browser engine's generation relay: one request at a time to the attached tab.

It owns the wait queue and the request the tab is working on, and turns the
tab's admitted / token / done / error messages into the client's events. Stop
strings are applied here too (the tab applies them as well; this is the
backstop), and the Completion is built from the server's own clocks.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable
from typing import Any

from browser_llm.core.errors import (
    BrowserLLMError,
    CancelledError,
    InferenceError,
    WebGPUError,
)
from browser_llm.core.types import FinishReason
from browser_llm.engine.base import Admitted, Engine, Failed, Finished, Started, TokenText
from browser_llm.engine.browser.tab import BrowserHandle, Run, request_id, tab_error, wllama_options
from browser_llm.engine.text_stream import TextStream

__all__ = ["GENERATION_MESSAGES", "TabRelay", "forward"]

GENERATION_MESSAGES = ("admitted", "token", "done", "error")


class TabRelay:
    """Queue and running request of the browser engine (event loop only)."""

    def __init__(
        self,
        send: Callable[[dict[str, Any]], None],
        ready: Callable[[], bool],
        context_length: Callable[[], int],
    ) -> None:
        self._send = send  # to the attached tab, if any
        self._ready = ready  # a tab is attached and has the model loaded
        self._context_length = context_length
        self._queue: deque[BrowserHandle] = deque()
        self._run: Run | None = None
        self.idle = asyncio.Event()  # set while the tab runs nothing (model changes wait)
        self.idle.set()
        self.tokens_total = 0
        self.memory_errors = 0

    @property
    def run(self) -> Run | None:
        """The request the tab is running (until the tab confirms its end)."""
        return self._run

    @run.setter
    def run(self, value: Run | None) -> None:
        self._run = value
        if value is None:
            self.idle.set()
        else:
            self.idle.clear()

    @property
    def running(self) -> int:
        return 1 if self.run is not None and not self.run.ended else 0

    def enqueue(self, handle: BrowserHandle) -> None:
        self._queue.append(handle)
        self.dispatch()

    def dispatch(self) -> None:
        """Sends the next queued request when the tab is free."""
        while self.run is None and self._queue and self._ready():
            handle = self._queue.popleft()
            if handle.cancelled:
                continue  # already answered by cancel()
            self.run = Run(handle, time.perf_counter(), TextStream(handle.request.params.stop))
            self._send(
                {"type": "generate", "id": request_id(handle), "data": wllama_options(handle)}
            )

    def on_message(self, kind: str, message: dict[str, Any]) -> None:
        run = self.run
        if run is None or message.get("id") != request_id(run.handle):
            return  # a finished or cancelled request's late words
        if kind == "admitted":
            self._on_admitted(run, message.get("prompt_tokens"))
        elif kind == "token":
            text = message.get("text")
            if isinstance(text, str) and text and not run.ended:
                self._on_admitted(run, None)
                self._on_text(run, text)
        elif kind == "done":
            self._on_admitted(run, None)
            data = message.get("data")
            self._on_done(run, data if isinstance(data, dict) else {})
        else:
            error = tab_error(message, InferenceError, "the browser engine failed")
            if isinstance(error, WebGPUError | InferenceError) and "memory" in error.message:
                self.memory_errors += 1
            self._finish_run(run, error=error)

    def cancel(self, handle: BrowserHandle) -> None:
        if handle in self._queue:
            self._queue.remove(handle)
            handle.post(Failed(CancelledError("cancelled while queued")))
            return
        run = self.run
        if run is not None and run.handle is handle and not run.ended:
            self._abort_in_tab(run)
            self.end_client(run, "stop", CancelledError("cancelled by the client"))
            # self.run stays set until the tab confirms, so the tab runs one request at a time.

    def take_all(self) -> tuple[Run | None, list[BrowserHandle]]:
        """Empties the relay (the tab is gone): the unfinished run and the queued handles."""
        run, self.run = self.run, None
        queued, self._queue = list(self._queue), deque()
        return (run if run is not None and not run.ended else None), queued

    def fail_all(self, error: BrowserLLMError) -> None:
        run, queued = self.take_all()
        if run is not None:
            self.end_client(run, "stop", error)
        for handle in queued:
            handle.post(Failed(error))

    def fail_running(self, error: BrowserLLMError) -> None:
        """The tab cannot finish its request (its device is gone): end it now."""
        run = self.run
        if run is not None:
            self._finish_run(run, error=error)

    def fail_queued(self, error: BrowserLLMError) -> None:
        queued, self._queue = list(self._queue), deque()
        for handle in queued:
            handle.post(Failed(error))

    def end_client(self, run: Run, finish: FinishReason, error: BrowserLLMError | None) -> None:
        """The client's final event (the tab may still be busy with the request)."""
        run.ended = True
        handle = run.handle
        if error is not None:
            handle.post(Failed(error))
            return
        tail = run.text.flush()
        if tail:
            handle.post(TokenText(tail))
        handle.tokens_generated = run.pieces
        handle.post(Finished(run.completion(finish)))

    # ---- messages ------------------------------------------------------------
    def _on_admitted(self, run: Run, prompt_tokens: Any) -> None:
        if run.admitted:
            return
        run.admitted = True
        if isinstance(prompt_tokens, int) and prompt_tokens > 0:
            run.prompt_tokens = prompt_tokens
        requested = run.handle.request.params.max_tokens
        room = max(1, self._context_length() - run.prompt_tokens)
        run.clamped = run.prompt_tokens > 0 and requested > room
        if run.ended:
            return
        run.handle.post(Admitted(run.prompt_tokens, min(requested, room), run.clamped))
        run.handle.post(Started(run.dispatched_at - run.handle.request.submitted_at))

    def _on_text(self, run: Run, text: str) -> None:
        now = time.perf_counter()
        if run.first_token_at is None:
            run.first_token_at = now
        run.last_token_at = now
        run.pieces += 1
        self.tokens_total += 1
        out = run.text.push(text.encode("utf-8"))
        if out:
            run.handle.post(TokenText(out))
        if run.text.stopped:
            self._abort_in_tab(run)
            self.end_client(run, "stop", None)

    def _on_done(self, run: Run, data: dict[str, Any]) -> None:
        reason = data.get("finish_reason")
        finish: FinishReason = "length" if reason == "length" else "stop"
        completion_tokens = data.get("completion_tokens")
        prompt_tokens = data.get("prompt_tokens")
        if isinstance(prompt_tokens, int) and prompt_tokens > 0:
            run.prompt_tokens = prompt_tokens
        if isinstance(completion_tokens, int) and completion_tokens >= 0:
            self.tokens_total += completion_tokens - run.pieces
            run.pieces = completion_tokens
        self._finish_run(run, finish=finish)

    def _finish_run(
        self, run: Run, finish: FinishReason = "stop", error: BrowserLLMError | None = None
    ) -> None:
        """The tab is done with this request: answer the client (if not yet) and move on."""
        if not run.ended:
            self.end_client(run, finish, error)
        self.run = None
        self.dispatch()

    def _abort_in_tab(self, run: Run) -> None:
        self._send({"type": "abort", "id": request_id(run.handle)})


def forward(fallback: Engine, handle: BrowserHandle) -> None:
    """Runs a request on the fallback engine, relaying its events to the original handle."""
    inner = fallback.submit(handle.request)
    handle.forwarded = inner
    if handle.cancelled:
        inner.cancel()

    async def relay() -> None:
        async for event in inner.events():
            handle.post(event)

    asyncio.get_running_loop().create_task(relay())
