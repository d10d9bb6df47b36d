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
import socket
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


def _bound(family: socket.AddressFamily, address: str, port: int) -> socket.socket:
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if family == socket.AF_INET6:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        sock.bind((address, port))
    except OSError:
        sock.close()
        raise
    return sock


def loopback_sockets(host: str, port: int) -> list[socket.socket] | None:
    """For the default loopback host, sockets on both 127.0.0.1 and ::1 (same port).

    `localhost` resolves to ::1 first on many systems (Node's fetch, browsers), and the
    spec's clients use http://localhost:3000: a server on 127.0.0.1 alone refuses them.
    ::1 is added when the machine has IPv6 loopback; otherwise IPv4 alone, with a log line.
    Other hosts: None (uvicorn binds the host as given).
    """
    if host not in ("127.0.0.1", "localhost"):
        return None
    v4 = _bound(socket.AF_INET, "127.0.0.1", port)
    port = v4.getsockname()[1]  # port 0: ::1 takes the port 127.0.0.1 got
    try:
        v6 = _bound(socket.AF_INET6, "::1", port)
    except OSError as exc:
        logger.info("listening on 127.0.0.1 only (::1 unavailable: %s)", exc)
        return [v4]
    return [v4, v6]


def serve(app: FastAPI, host: str, port: int, grace_s: float, **options: object) -> int:
    """Runs the server until a signal; returns the process exit code."""
    config = uvicorn.Config(app, host=host, port=port, **options)  # type: ignore[arg-type]
    server = DrainingServer(config, app, grace_s)
    try:
        sockets = loopback_sockets(host, port)
    except OSError as exc:
        logger.error("cannot listen on %s:%s: %s", host, port, exc)
        return 3
    server.run(sockets=sockets)
    return 0 if server.started else 3
