"""The HTTP server: uvicorn, with a graceful drain on SIGTERM and SIGINT.

uvicorn alone, on a signal, closes its listening socket at once (new clients get
"connection refused") and waits for open connections, then re-raises the signal, so
the process ends "killed by SIGTERM" rather than with exit code 0. Here the first
signal starts a drain instead: the socket stays open and new generation requests get
a fast 503 OVERLOADED with Retry-After (reason "shutting_down"), running generations
get up to BROWSER_LLM_SHUTDOWN_GRACE_S to finish and are then cancelled (their streams
end with an error event), and only then does uvicorn shut down. Exit code 0.
A second signal falls through to uvicorn's own handling (a second Ctrl+C: stop now).
"""

from __future__ import annotations

import asyncio
import logging
import signal
from types import FrameType

import uvicorn
from fastapi import FastAPI

from browser_llm.api.services import services_of

__all__ = ["DrainingServer", "serve"]

logger = logging.getLogger(__name__)


class DrainingServer(uvicorn.Server):
    def __init__(self, config: uvicorn.Config, app: FastAPI, grace_s: float) -> None:
        super().__init__(config)
        self._app = app
        self._grace_s = grace_s
        self._drain_requested = False
        self._drain: asyncio.Task[bool] | None = None

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        if not self._drain_requested and not self.should_exit:
            # Runs inside a signal handler: only set flags; on_tick starts the drain.
            self._drain_requested = True
            svc = services_of(self._app)
            if svc is not None:
                svc.generation.draining = True  # refuse new requests from now on
            logger.info("received %s: draining", signal.Signals(sig).name)
            return
        super().handle_exit(sig, frame)

    async def on_tick(self, counter: int) -> bool:
        if self._drain_requested and self._drain is None:
            svc = services_of(self._app)
            if svc is None:  # not started yet: nothing to drain
                self.should_exit = True
            else:
                self._drain = asyncio.create_task(svc.generation.drain(self._grace_s))
        if self._drain is not None and self._drain.done():
            self.should_exit = True
        return await super().on_tick(counter)


def serve(app: FastAPI, host: str, port: int, grace_s: float, **options: object) -> int:
    """Runs the server until a signal; returns the process exit code."""
    config = uvicorn.Config(app, host=host, port=port, **options)  # type: ignore[arg-type]
    server = DrainingServer(config, app, grace_s)
    server.run()
    return 0 if server.started else 3
