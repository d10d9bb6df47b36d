"""The browser engine's heartbeat: a tab that stops answering is dropped in bounded time.

WebSocket pings are answered by the browser's network stack even while the page's script
is frozen, so the check is at the application level: every quarter of the timeout the
server sends {"type": "ping"}, the page's script answers {"type": "pong"}, and any message
from the tab counts as a sign of life (Tab.last_seen). A tab silent for longer than the
timeout is reported once to `on_silent`, which fails its requests and closes its socket.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable
from typing import Any

from browser_llm.engine.browser.tab import Tab

__all__ = ["TabHeartbeat"]


class TabHeartbeat:
    """Watches one tab at a time (the attached one); event loop only."""

    def __init__(
        self,
        timeout_s: float,
        send: Callable[[Tab, dict[str, Any]], Awaitable[None]],
        on_silent: Callable[[Tab, float], None],
    ) -> None:
        self.timeout_s = timeout_s
        self._send = send
        self._on_silent = on_silent
        self._task: asyncio.Task[None] | None = None

    def watch(self, tab: Tab) -> None:
        self.stop()
        tab.last_seen = time.monotonic()
        self._task = asyncio.get_running_loop().create_task(self._run(tab))

    def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None and task is not asyncio.current_task():
            task.cancel()

    async def _run(self, tab: Tab) -> None:
        with contextlib.suppress(asyncio.CancelledError):
            while True:
                await asyncio.sleep(self.timeout_s / 4)
                silent = time.monotonic() - tab.last_seen
                if silent > self.timeout_s:
                    self._task = None
                    self._on_silent(tab, silent)
                    return
                await self._send(tab, {"type": "ping"})
