"""Pure-ASGI middleware (safe for streaming): request id, arrival time, request counts."""

from __future__ import annotations

import re
import time

from starlette.datastructures import Headers, MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from browser_llm.api.envelope import new_request_id
from browser_llm.observability.context import current_request_id
from browser_llm.observability.prometheus import PrometheusMetrics

__all__ = ["API_PREFIX", "RequestContextMiddleware"]

API_PREFIX = "/api/v1"

# A client's own request id is kept if it is short and plain.
_CLIENT_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")


class RequestContextMiddleware:
    """Gives each request an id (kept from X-Request-ID when the client sends a sane one),
    echoes it, makes it visible to logging, and counts the response by route and code."""

    def __init__(self, app: ASGIApp, prometheus: PrometheusMetrics) -> None:
        self.app = app
        self.prometheus = prometheus

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        supplied = Headers(scope=scope).get("x-request-id", "")
        request_id = supplied if _CLIENT_ID.match(supplied) else new_request_id()
        state = scope.setdefault("state", {})
        state["request_id"] = request_id
        state["started_at"] = time.perf_counter()
        token = current_request_id.set(request_id)
        status = 500

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                MutableHeaders(scope=message)["X-Request-ID"] = request_id
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            current_request_id.reset(token)
            if scope["type"] == "http":
                endpoint = _endpoint_label(scope)
                self.prometheus.requests.labels(scope["method"], endpoint, str(status)).inc()


def _endpoint_label(scope: Scope) -> str:
    """The route's template (/api/v1/models/{model_id}), never the raw path: bounded labels."""
    template = getattr(scope.get("route"), "path", None)
    if template is None:
        return "unmatched"
    # Routes included under the API prefix report their own part only.
    if scope["path"].startswith(API_PREFIX + "/") and not template.startswith(API_PREFIX):
        return API_PREFIX + str(template)
    return str(template)
