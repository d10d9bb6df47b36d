"""The browser tab's model load as the server sees it: one load at a time, its `load`
message, the progress the tab reports, and how it ended (the answer the engine's `load`
awaits, /status `browser.load_progress`, `last_load` and the sticky load error)."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

from browser_llm.core.errors import BrowserLLMError
from browser_llm.core.types import LoadedModel
from browser_llm.engine.browser.model import WantedModel

__all__ = [
    "TabLoad",
    "not_loaded_text",
]


class TabLoad:
    def __init__(self) -> None:
        self._pending: tuple[str, asyncio.Future[LoadedModel]] | None = None
        self.progress: dict[str, Any] | None = None  # {model_id, loaded, total} bytes
        self.last: dict[str, Any] | None = None  # what the tab said about its last load
        self.error: BrowserLLMError | None = None  # the tab's last failed load

    @property
    def pending(self) -> bool:
        return self._pending is not None

    def begin(
        self, wanted: WantedModel, url: str, n_ctx: int, backend: str
    ) -> tuple[dict[str, Any], asyncio.Future[LoadedModel]]:
        """The `load` message for the tab and the future its answer settles; a load still
        pending is abandoned (its caller sees CancelledError)."""
        if self._pending is not None:
            self._pending[1].cancel()
        future: asyncio.Future[LoadedModel] = asyncio.get_running_loop().create_future()
        load_id = uuid.uuid4().hex[:12]
        self._pending = (load_id, future)
        self.progress = {"model_id": wanted.model_id, "loaded": 0, "total": wanted.size_bytes}
        message = {
            "type": "load",
            "id": load_id,
            "data": {
                "model_id": wanted.model_id,
                "url": url,
                "size_bytes": wanted.size_bytes,
                "n_ctx": n_ctx,
                "backend": backend,
            },
        }
        return message, future

    def on_progress(self, data: dict[str, Any]) -> None:
        loaded, total = data.get("loaded"), data.get("total")
        if self.progress is not None and isinstance(loaded, int) and isinstance(total, int):
            self.progress = {**self.progress, "loaded": loaded, "total": total}

    def succeed(self, model: LoadedModel, record: dict[str, Any]) -> None:
        pending, self._pending = self._pending, None
        self.progress = None
        self.last = record
        self.error = None
        if pending is not None and not pending[1].done():
            pending[1].set_result(model)

    def fail(self, error: BrowserLLMError, sticky: bool = True) -> None:
        """The load ended in `error`; `sticky`: /status keeps it as the last load error."""
        pending, self._pending = self._pending, None
        self.progress = None
        if sticky:
            self.error = error
        if pending is not None and not pending[1].done():
            pending[1].set_exception(error)


def not_loaded_text(attached: bool, state: str, error: BrowserLLMError | None) -> str:
    """Why the browser engine has no model, in words a user can act on."""
    if not attached:
        return "no browser tab is attached: open the /engine page of this server in a browser"
    if state == "loading":
        return "the browser tab is still loading the model; retry shortly"
    if state == "error" and error is not None:
        return f"the browser tab could not load the model ({error.code}): {error.message}"
    return "the browser tab has no model loaded; load one first"
