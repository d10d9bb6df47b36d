"""Errors the SDK raises, one class per API error code (`err.code` always holds the code)."""

from __future__ import annotations

from typing import Any

__all__ = [
    "BrowserLLMError",
    "InferenceError",
    "ModelLoadFailedError",
    "ModelNotLoadedError",
    "NotFoundError",
    "OverloadedError",
    "RateLimitError",
    "ServerError",
    "StorageError",
    "UnauthorizedError",
    "ValidationError",
    "error_for",
]


class BrowserLLMError(Exception):
    """An error answer from the server (or no answer: code 'CONNECTION_ERROR')."""

    def __init__(
        self,
        code: str,
        message: str,
        status: int | None = None,
        details: Any = None,
        request_id: str | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.status = status
        self.details = details
        self.request_id = request_id
        self.retry_after = retry_after


class ValidationError(BrowserLLMError):
    pass


class ModelNotLoadedError(BrowserLLMError):
    pass


class ModelLoadFailedError(BrowserLLMError):
    pass


class InferenceError(BrowserLLMError):
    pass


class StorageError(BrowserLLMError):
    pass


class RateLimitError(BrowserLLMError):
    pass


class OverloadedError(BrowserLLMError):
    pass


class UnauthorizedError(BrowserLLMError):
    pass


class NotFoundError(BrowserLLMError):
    pass


class ServerError(BrowserLLMError):
    pass


_BY_CODE: dict[str, type[BrowserLLMError]] = {
    "VALIDATION_ERROR": ValidationError,
    "PAYLOAD_TOO_LARGE": ValidationError,
    "MODEL_NOT_LOADED": ModelNotLoadedError,
    "MODEL_LOAD_FAILED": ModelLoadFailedError,
    "INFERENCE_ERROR": InferenceError,
    "STORAGE_ERROR": StorageError,
    "RATE_LIMIT": RateLimitError,
    "OVERLOADED": OverloadedError,
    "UNAUTHORIZED": UnauthorizedError,
    "FORBIDDEN": UnauthorizedError,
    "NOT_FOUND": NotFoundError,
}


def error_for(
    code: str,
    message: str,
    status: int | None = None,
    details: Any = None,
    request_id: str | None = None,
    retry_after: float | None = None,
) -> BrowserLLMError:
    cls = _BY_CODE.get(code, ServerError)
    return cls(code, message, status, details, request_id, retry_after)
