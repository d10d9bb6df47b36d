"""What both clients share: request building, envelope unwrapping, SSE parsing, retry policy."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx

from browser_llm.client.errors import BrowserLLMError, error_for

__all__ = [
    "DEFAULT_BASE_URL",
    "SSEParser",
    "StreamState",
    "backoff_seconds",
    "headers_for",
    "load_error",
    "query",
    "unwrap",
]

DEFAULT_BASE_URL = "http://127.0.0.1:3000/api/v1"
RETRYABLE = {"RATE_LIMIT", "OVERLOADED"}


def headers_for(api_key: str | None) -> dict[str, str]:
    return {"Authorization": f"Bearer {api_key}"} if api_key else {}


def unwrap(response: httpx.Response) -> Any:
    """The envelope's data, or the matching BrowserLLMError."""
    try:
        body = response.json()
    except ValueError:
        raise error_for(
            "INTERNAL_ERROR",
            f"non-JSON answer (HTTP {response.status_code})",
            response.status_code,
        ) from None
    if response.is_success and isinstance(body, dict) and body.get("success"):
        return body.get("data")
    raise error_from(response, body)


def error_from(response: httpx.Response, body: Any) -> BrowserLLMError:
    error = body.get("error", {}) if isinstance(body, dict) else {}
    meta = body.get("metadata", {}) if isinstance(body, dict) else {}
    retry = response.headers.get("Retry-After")
    return error_for(
        str(error.get("code", "INTERNAL_ERROR")),
        str(error.get("message", f"HTTP {response.status_code}")),
        response.status_code,
        error.get("details"),
        meta.get("requestId") or response.headers.get("X-Request-ID"),
        float(retry) if retry and retry.replace(".", "", 1).isdigit() else None,
    )


def backoff_seconds(error: BrowserLLMError, attempt: int) -> float | None:
    """How long to wait before retry `attempt` (0-based), or None if the error is final.

    Exponential backoff (1, 2, 4 ... s), never shorter than the server's Retry-After.
    """
    if error.code not in RETRYABLE:
        return None
    return max(float(2**attempt), error.retry_after or 0.0)


class SSEParser:
    """Server-Sent Events from arbitrary byte chunks: lines and UTF-8 characters may be
    split anywhere between chunks."""

    def __init__(self) -> None:
        self._buffer = b""

    def feed(self, chunk: bytes) -> Iterator[dict[str, Any]]:
        self._buffer += chunk
        while b"\n\n" in self._buffer:
            block, self._buffer = self._buffer.split(b"\n\n", 1)
            data = [
                line[5:].lstrip(b" ") for line in block.split(b"\n") if line.startswith(b"data:")
            ]
            if data:
                yield json.loads(b"\n".join(data).decode("utf-8"))


def load_error(result: dict[str, Any]) -> BrowserLLMError:
    """The error of a load answer with status "error" (its `error` says why)."""
    error = result.get("error") or {}
    return error_for(
        str(error.get("code", "MODEL_LOAD_FAILED")),
        str(error.get("message", "the model failed to load")),
        details=error.get("details"),
    )


def stream_error(event: dict[str, Any]) -> BrowserLLMError:
    data = event.get("data") or {}
    return error_for(str(data.get("code", "INFERENCE_ERROR")), str(data.get("error", "failed")))


class StreamState:
    """What a token stream has seen so far; shared by the sync and async streams."""

    def __init__(self) -> None:
        self.parser = SSEParser()
        self.completion: dict[str, Any] | None = None

    def tokens(self, chunk: bytes) -> list[str]:
        """The tokens in a chunk; records the completion, raises a stream's error event."""
        out = []
        for event in self.parser.feed(chunk):
            if event["type"] == "token":
                out.append(event["data"]["token"])
            elif event["type"] == "done":
                self.completion = event["data"]["completion"]
            elif event["type"] == "error":
                raise stream_error(event)
        return out


def query(**params: Any) -> dict[str, Any]:
    """Query parameters that were given (None means: leave it to the server)."""
    return {k: v for k, v in params.items() if v is not None}
