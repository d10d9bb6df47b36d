"""Domain errors. Each class carries the stable API error code it maps to.

The HTTP status for each code lives in one table in ``api/error_shapes.py``; nothing
here knows about HTTP.
"""

from __future__ import annotations

from typing import Any

# details.reason of the ValidationError for a prompt the context cannot hold (OpenAI's
# error code for it, which the /v1 routes answer with).
CONTEXT_LENGTH_EXCEEDED = "context_length_exceeded"

__all__ = [
    "CONTEXT_LENGTH_EXCEEDED",
    "BrowserLLMError",
    "CancelledError",
    "InferenceError",
    "InternalError",
    "ModelLoadFailedError",
    "ModelNotFoundError",
    "ModelNotLoadedError",
    "OverloadedError",
    "StorageError",
    "UnsupportedError",
    "ValidationError",
    "WebGPUError",
]


class BrowserLLMError(Exception):
    """Base class: a message for people, a stable code for programs."""

    code = "INTERNAL_ERROR"

    def __init__(
        self,
        message: str,
        details: dict[str, Any] | None = None,
        retry_after_s: int | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.details = details
        self.retry_after_s = retry_after_s  # sent as Retry-After when set


class ValidationError(BrowserLLMError):
    code = "VALIDATION_ERROR"


class ModelNotFoundError(BrowserLLMError):
    code = "NOT_FOUND"


class ModelNotLoadedError(BrowserLLMError):
    code = "MODEL_NOT_LOADED"


class ModelLoadFailedError(BrowserLLMError):
    code = "MODEL_LOAD_FAILED"


class InferenceError(BrowserLLMError):
    code = "INFERENCE_ERROR"


class StorageError(BrowserLLMError):
    code = "STORAGE_ERROR"


class WebGPUError(BrowserLLMError):
    """The browser engine's GPU failed (device lost, out of GPU memory)."""

    code = "WEBGPU_ERROR"


class InternalError(BrowserLLMError):
    code = "INTERNAL_ERROR"


class CancelledError(BrowserLLMError):
    """The client went away or aborted; the generation was stopped."""

    code = "CANCELLED"


class OverloadedError(BrowserLLMError):
    """The wait queue is full; the client should retry later."""

    code = "OVERLOADED"


class UnsupportedError(BrowserLLMError):
    """A feature this server (or this engine) does not offer yet: refused, never faked."""

    code = "NOT_IMPLEMENTED"
