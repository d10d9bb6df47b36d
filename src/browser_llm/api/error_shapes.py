"""The one error table, and every error body the API sends, derived from it.

Each transport has one builder: the JSON envelope (HTTP), the `error` event of a
stream (SSE and WebSocket share its `data`), OpenAI's shape (on /v1, HTTP and
stream), Anthropic's (on /v1/messages, HTTP and stream) and Ollama's (on /api/<name>,
HTTP and NDJSON stream). Nothing else builds
an error body; docs/api.md prints the same table.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from browser_llm.core.errors import CONTEXT_LENGTH_EXCEEDED, BrowserLLMError

__all__ = [
    "ERRORS",
    "ErrorKind",
    "anthropic_error",
    "anthropic_error_of",
    "anthropic_status",
    "envelope_error",
    "ollama_error",
    "ollama_error_of",
    "openai_error",
    "openai_error_of",
    "status_for",
    "stream_error_data",
    "stream_error_of",
]


@dataclass(frozen=True)
class ErrorKind:
    """How one code travels: its HTTP status, and the spec code a spec-only client reads it as."""

    status: int
    spec_code: str  # the spec's own code nearest in meaning (itself for the spec's codes)


# code -> kind. The first eight are the spec's; the rest are extensions.
ERRORS: dict[str, ErrorKind] = {
    "MODEL_NOT_LOADED": ErrorKind(503, "MODEL_NOT_LOADED"),
    "MODEL_LOAD_FAILED": ErrorKind(500, "MODEL_LOAD_FAILED"),
    "VALIDATION_ERROR": ErrorKind(400, "VALIDATION_ERROR"),
    "INFERENCE_ERROR": ErrorKind(500, "INFERENCE_ERROR"),
    "WEBGPU_ERROR": ErrorKind(500, "WEBGPU_ERROR"),
    "STORAGE_ERROR": ErrorKind(507, "STORAGE_ERROR"),
    "RATE_LIMIT": ErrorKind(429, "RATE_LIMIT"),
    "INTERNAL_ERROR": ErrorKind(500, "INTERNAL_ERROR"),
    # Extensions. A full queue is retried like RATE_LIMIT (Retry-After) by both SDKs.
    "OVERLOADED": ErrorKind(503, "RATE_LIMIT"),
    "NOT_FOUND": ErrorKind(404, "VALIDATION_ERROR"),
    "METHOD_NOT_ALLOWED": ErrorKind(405, "VALIDATION_ERROR"),
    "PAYLOAD_TOO_LARGE": ErrorKind(413, "VALIDATION_ERROR"),
    "UNAUTHORIZED": ErrorKind(401, "VALIDATION_ERROR"),
    "FORBIDDEN": ErrorKind(403, "VALIDATION_ERROR"),
    "CANCELLED": ErrorKind(499, "INFERENCE_ERROR"),
    "NOT_IMPLEMENTED": ErrorKind(501, "VALIDATION_ERROR"),
}

_UNKNOWN = ErrorKind(500, "INTERNAL_ERROR")

# OpenAI's `type` for an HTTP status; other 4xx are invalid_request_error, 5xx server_error.
_OPENAI_TYPES = {
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    429: "rate_limit_error",
}


# Anthropic's error `type` for an HTTP status; other 4xx are invalid_request_error, 5xx
# api_error. A full queue is Anthropic's 529 overloaded_error (its SDKs retry it).
_ANTHROPIC_TYPES = {
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    529: "overloaded_error",
}
_ANTHROPIC_STATUS = {"OVERLOADED": 529}


def status_for(code: str) -> int:
    return ERRORS.get(code, _UNKNOWN).status


def envelope_error(code: str, message: str, details: Any = None) -> dict[str, Any]:
    """The envelope's `error` object (HTTP on /api/v1)."""
    error: dict[str, Any] = {"code": code, "message": message}
    if details is not None:
        error["details"] = details
    return error


def stream_error_data(code: str, message: str, details: Any = None) -> dict[str, Any]:
    """`data` of an `error` event, the same on SSE and WebSocket: the spec's StreamChunk
    `{error: string}` plus `code` (and `details` when there are any)."""
    data: dict[str, Any] = {"error": message, "code": code}
    if details is not None:
        data["details"] = details
    return data


def stream_error_of(exc: BrowserLLMError) -> dict[str, Any]:
    return stream_error_data(exc.code, exc.message, exc.details)


def openai_error(
    code: str, message: str, param: str | None = None, details: Any = None, chat: bool = True
) -> dict[str, Any]:
    """OpenAI's error body, for HTTP answers and stream events on /v1 alike. A prompt longer
    than the context (`details.reason`) is OpenAI's `context_length_exceeded` on the prompt's
    field, `messages` (chat) or `prompt`: OpenAI's clients look for that code."""
    status = status_for(code)
    kind = _OPENAI_TYPES.get(status, "server_error" if status >= 500 else "invalid_request_error")
    if isinstance(details, dict) and details.get("reason") == CONTEXT_LENGTH_EXCEEDED:
        code, param = CONTEXT_LENGTH_EXCEEDED, "messages" if chat else "prompt"
    return {"error": {"message": message, "type": kind, "param": param, "code": code}}


def openai_error_of(exc: BrowserLLMError, chat: bool = True) -> dict[str, Any]:
    param = exc.details.get("field") if isinstance(exc.details, dict) else None
    return openai_error(
        exc.code, exc.message, param if isinstance(param, str) else None, exc.details, chat
    )


def ollama_error(code: str, message: str) -> dict[str, Any]:
    """Ollama's error body, `{"error": message}`, for HTTP answers (status from the table)
    and as a line of an NDJSON stream alike; the code travels in the message only."""
    return {"error": message}


def ollama_error_of(exc: BrowserLLMError) -> dict[str, Any]:
    return ollama_error(exc.code, exc.message)


def anthropic_status(code: str) -> int:
    """The HTTP status of a code on /v1/messages (the table's, but 529 for a full queue)."""
    return _ANTHROPIC_STATUS.get(code, status_for(code))


def anthropic_error(code: str, message: str, details: Any = None) -> dict[str, Any]:
    """Anthropic's error body, for HTTP answers and the stream's `error` event alike."""
    status = anthropic_status(code)
    kind = _ANTHROPIC_TYPES.get(status, "api_error" if status >= 500 else "invalid_request_error")
    if isinstance(details, dict) and "prompt_tokens" in details and "context_length" in details:
        # Anthropic's own wording, which Claude Code reads to tell its user to compact.
        message = (
            f"prompt is too long: {details['prompt_tokens']} tokens > "
            f"{details['context_length'] - 1} maximum"
        )
    return {"type": "error", "error": {"type": kind, "message": message}}


def anthropic_error_of(exc: BrowserLLMError) -> dict[str, Any]:
    return anthropic_error(exc.code, exc.message, exc.details)
