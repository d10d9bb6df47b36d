"""The Browser LLM Python SDK. Depends on httpx only and never imports server code.

from browser_llm.client import BrowserLLMClient, RateLimitError
with BrowserLLMClient() as client:
    print(client.generate("What is AI?", max_tokens=100)["text"])
"""

from browser_llm.client.async_client import AsyncBrowserLLMClient, AsyncTokenStream
from browser_llm.client.errors import (
    BrowserLLMError,
    InferenceError,
    ModelLoadFailedError,
    ModelNotLoadedError,
    NotFoundError,
    OverloadedError,
    RateLimitError,
    ServerError,
    StorageError,
    UnauthorizedError,
    ValidationError,
)
from browser_llm.client.sync_client import BrowserLLMClient, TokenStream
from browser_llm.client.ws_session import WebSocketSession

__all__ = [
    "AsyncBrowserLLMClient",
    "AsyncTokenStream",
    "BrowserLLMClient",
    "BrowserLLMError",
    "InferenceError",
    "ModelLoadFailedError",
    "ModelNotLoadedError",
    "NotFoundError",
    "OverloadedError",
    "RateLimitError",
    "ServerError",
    "StorageError",
    "TokenStream",
    "UnauthorizedError",
    "ValidationError",
    "WebSocketSession",
]
