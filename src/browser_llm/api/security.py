"""Pure-ASGI guard in front of every route: Host check (DNS rebinding), Origin checks
(WebSockets, and bodies a web page can send without a CORS preflight), API key, rate
limits and the request body bound. A POST body is read as JSON whatever its label."""

from __future__ import annotations

import hmac
import ipaddress
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import parse_qs, urlsplit

from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from browser_llm.api.envelope import error_body
from browser_llm.api.ratelimit import RateDecision, RateLimiter, bucket_for, client_key
from browser_llm.api.spec.web import is_web_path
from browser_llm.config import Settings

__all__ = ["HEALTH_PATH", "SecurityMiddleware"]

HEALTH_PATH = "/api/v1/health"  # the one endpoint open without a key
# The browser engine page and its static files hold no data (a browser cannot send a
# key when it opens a page); its WebSocket and model files still need the key.
ENGINE_PAGE_PREFIX = "/engine"
_LOOPBACK_NAMES = {"localhost", "localhost.", "127.0.0.1", "::1", "[::1]"}


class _BodyTooLarge(Exception):
    pass


def _is_loopback(host: str) -> bool:
    if host in _LOOPBACK_NAMES or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _open_path(path: str) -> bool:
    """Served without a key or rate limit: health, and the web page's own files (which
    hold no data; the page asks for the key and sends it on its API calls)."""
    return path == HEALTH_PATH or is_web_path(path)


# Ollama's and OpenAI's servers read a body as JSON whatever its label: litellm's ollama/
# prefixes send none, curl -d labels it a form. The label is dropped, and the routes read
# an unlabelled body as JSON (FastAPI's strict_content_type=False, api/app.py).
_BODY_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})  # curl -X DELETE -d too
_NO_PREFLIGHT = (
    "cross-origin request refused: from a web page, send the body with "
    "Content-Type: application/json (CORS, BROWSER_LLM_CORS_ORIGINS)"
)


def _labelled_json(content_type: str | None) -> bool:
    media = (content_type or "").split(";", 1)[0].strip().lower()
    return media == "application/json" or (
        media.startswith("application/") and media.endswith("+json")
    )


def _drop_label(scope: Scope) -> None:
    # In place: the outer middleware reads the route Starlette records on this scope.
    scope["headers"] = [(k, v) for k, v in scope["headers"] if k.lower() != b"content-type"]


def _hostname(host_header: str) -> str:
    return (urlsplit("//" + host_header).hostname or "").lower()


class SecurityMiddleware:
    def __init__(self, app: ASGIApp, settings: Settings, limiter: RateLimiter) -> None:
        self.app = app
        self.settings = settings
        self.limiter = limiter
        self.allowed_hosts = {h.lower() for h in settings.allowed_hosts}
        self.origins = set(settings.cors_origins)
        key = settings.api_key
        self.api_key = key.get_secret_value().encode() if key is not None else None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        if not self._host_ok(headers.get("host", "")):
            await self._deny(scope, send, 403, "FORBIDDEN", "this Host is not served here")
            return
        if scope["type"] == "websocket" and not self._origin_ok(headers):
            await self._deny(scope, send, 403, "FORBIDDEN", "cross-origin WebSocket refused")
            return
        if (
            scope["type"] == "http"
            and scope["method"] in _BODY_METHODS
            and not _labelled_json(headers.get("content-type"))
        ):
            # A browser sends such a body from any page without a CORS preflight.
            if not self._origin_ok(headers):
                await self._deny(scope, send, 403, "FORBIDDEN", _NO_PREFLIGHT)
                return
            _drop_label(scope)
        presented = self._presented_key(scope, headers)
        if not self._key_ok(scope, presented):
            await self._deny(
                scope,
                send,
                401,
                "UNAUTHORIZED",
                "an API key is required: send 'Authorization: Bearer <key>' or X-API-Key",
            )
            return
        client = client_key(presented, (scope.get("client") or ("unknown",))[0])
        scope.setdefault("state", {})["rate_client"] = client
        decision = None
        if scope["type"] == "http" and not _open_path(scope["path"]):
            decision = self.limiter.hit(bucket_for(scope["method"], scope["path"]), client)
            if not decision.allowed:
                await self._deny(
                    scope,
                    send,
                    429,
                    "RATE_LIMIT",
                    f"rate limit of {decision.limit} per minute reached; retry later",
                    decision.headers(),
                )
                return
        if scope["type"] == "http":
            declared = headers.get("content-length")
            if declared and declared.isdigit() and int(declared) > self.settings.max_body_bytes:
                await self._deny(scope, send, 413, "PAYLOAD_TOO_LARGE", self._too_large())
                return
        await self._forward(scope, receive, send, decision)

    async def _forward(
        self, scope: Scope, receive: Receive, send: Send, decision: RateDecision | None
    ) -> None:
        limit = self.settings.max_body_bytes
        seen = 0
        too_large = False
        replaced = False

        async def counted_receive() -> Message:
            nonlocal seen, too_large
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:  # a chunked body with no Content-Length
                    too_large = True
                    raise _BodyTooLarge
            return message

        async def send_with_limits(message: Message) -> None:
            nonlocal replaced
            if too_large:
                # The app turned the aborted read into some error: answer 413 instead.
                if not replaced:
                    replaced = True
                    await self._deny(scope, send, 413, "PAYLOAD_TOO_LARGE", self._too_large())
                return
            if message["type"] == "http.response.start" and decision is not None:
                extra = [(k.lower().encode(), v.encode()) for k, v in decision.headers().items()]
                message = {**message, "headers": [*message.get("headers", []), *extra]}
            await send(message)

        try:
            await self.app(
                scope, counted_receive if scope["type"] == "http" else receive, send_with_limits
            )
        except _BodyTooLarge:
            if not replaced:
                await self._deny(scope, send, 413, "PAYLOAD_TOO_LARGE", self._too_large())

    def _key_ok(self, scope: Scope, presented: str | None) -> bool:
        path = scope["path"]
        if self.api_key is None or _open_path(path):
            return True
        if scope["type"] == "http" and (
            path == ENGINE_PAGE_PREFIX or path.startswith(ENGINE_PAGE_PREFIX + "/")
        ):
            return True
        # Constant-time comparison: timing must not reveal how much of a key matched.
        return presented is not None and hmac.compare_digest(presented.encode(), self.api_key)

    def _too_large(self) -> str:
        return f"request body is larger than {self.settings.max_body_bytes} bytes"

    def _host_ok(self, host_header: str) -> bool:
        host = _hostname(host_header)
        return _is_loopback(host) or host in self.allowed_hosts

    def _origin_ok(self, headers: Headers) -> bool:
        origin = headers.get("origin")
        if origin is None:  # not a browser
            return True
        if origin in self.origins:
            return True
        # Same origin as the (already checked) Host: the server's own web page.
        if urlsplit(origin).netloc.lower() == headers.get("host", "").lower():
            return True
        return _is_loopback((urlsplit(origin).hostname or "").lower())

    @staticmethod
    def _presented_key(scope: Scope, headers: Headers) -> str | None:
        auth = headers.get("authorization", "")
        if auth.lower().startswith("bearer "):
            return auth[7:].strip()
        if headers.get("x-api-key"):
            return headers["x-api-key"]
        if scope["type"] == "websocket":  # browsers cannot set headers on a WebSocket
            values = parse_qs(scope.get("query_string", b"").decode()).get("api_key")
            return values[0] if values else None
        return None

    async def _deny(
        self,
        scope: Scope,
        send: Send,
        status: int,
        code: str,
        message: str,
        headers: dict[str, str] | None = None,
    ) -> None:
        if scope["type"] == "websocket":
            await send({"type": "websocket.close", "code": 1008, "reason": message[:120]})
            return
        await _send_json(send, status, error_body(scope, code, message), headers or {})


async def _send_json(
    send: Callable[[Message], Awaitable[None]], status: int, body: bytes, headers: dict[str, Any]
) -> None:
    raw = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    raw += [(k.lower().encode(), str(v).encode()) for k, v in headers.items()]
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": body})
