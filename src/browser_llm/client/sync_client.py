"""BrowserLLMClient: the blocking Python SDK (httpx only; never imports server code)."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx

from browser_llm.client.errors import BrowserLLMError
from browser_llm.client.protocol import (
    DEFAULT_BASE_URL,
    StreamState,
    backoff_seconds,
    error_from,
    headers_for,
    load_error,
    query,
    unwrap,
)
from browser_llm.client.ws_session import WebSocketSession

__all__ = ["BrowserLLMClient", "TokenStream"]


class TokenStream:
    """Iterate for tokens; afterwards `completion` holds the final GenerateResponse."""

    def __init__(self, chunks: Iterator[bytes]) -> None:
        self._chunks = chunks
        self._state = StreamState()

    @property
    def completion(self) -> dict[str, Any] | None:
        return self._state.completion

    def __iter__(self) -> Iterator[str]:
        for chunk in self._chunks:
            yield from self._state.tokens(chunk)


class BrowserLLMClient:
    def __init__(
        self,
        base_url: str = DEFAULT_BASE_URL,
        api_key: str | None = None,
        timeout: float = 120.0,
        retries: int = 0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.retries = retries
        self._base_url, self._api_key, self._timeout = base_url.rstrip("/"), api_key, timeout
        self._http = httpx.Client(
            base_url=base_url.rstrip("/"),
            headers=headers_for(api_key),
            timeout=timeout,
            transport=transport,
        )

    def __enter__(self) -> BrowserLLMClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        attempt = 0
        while True:
            try:
                return unwrap(self._http.request(method, path, **kwargs))
            except httpx.TransportError as exc:
                raise BrowserLLMError("CONNECTION_ERROR", str(exc)) from exc
            except BrowserLLMError as error:
                wait = backoff_seconds(error, attempt)
                if wait is None or attempt >= self.retries:
                    raise
                time.sleep(wait)
                attempt += 1

    def generate(self, prompt: str, **params: Any) -> dict[str, Any]:
        """POST /generate; params are the spec's (max_tokens, temperature, stop, ...)."""
        result: dict[str, Any] = self._call(
            "POST", "/generate", json={**params, "prompt": prompt, "stream": False}
        )
        return result

    def generate_stream(self, prompt: str, **params: Any) -> TokenStream:
        body = {**params, "prompt": prompt, "stream": True}

        def chunks() -> Iterator[bytes]:
            with self._http.stream("POST", "/generate", json=body) as response:
                if not response.is_success:
                    response.read()
                    raise error_from(response, response.json())
                yield from response.iter_bytes()

        return TokenStream(chunks())

    def get_models(self) -> dict[str, Any]:
        """GET /models: the spec's ModelsResponse, ``{"models": [...]}``."""
        models: dict[str, Any] = self._call("GET", "/models")
        return models

    def get_model(self, model_id: str) -> dict[str, Any]:
        model: dict[str, Any] = self._call("GET", f"/models/{model_id}")
        return model

    def load_model(
        self,
        model_id: str,
        wait: bool = True,
        progress: Callable[[float], None] | None = None,
        poll_s: float = 0.5,
    ) -> dict[str, Any]:
        """POST /models/{id}/load (starting again after a failed load); with wait, polls
        until the load ends, reporting progress 0-1, and raises the load's error if it
        failed (status "error"). Without wait, returns the first answer as it is."""
        path = f"/models/{model_id}/load"
        result: dict[str, Any] = self._call("POST", path, params={"retry": "true"})
        while wait and result.get("status") == "loading":
            if progress is not None:
                progress(float(result.get("progress") or 0.0))
            time.sleep(poll_s)
            result = self._call("POST", path)
        if wait and result.get("status") == "error":
            raise load_error(result)
        if progress is not None and result.get("status") == "loaded":
            progress(1.0)
        return result

    def unload_model(self, model_id: str) -> dict[str, Any]:
        result: dict[str, Any] = self._call("POST", f"/models/{model_id}/unload")
        return result

    def get_status(self) -> dict[str, Any]:
        status: dict[str, Any] = self._call("GET", "/status")
        return status

    def websocket(self) -> WebSocketSession:
        """A WebSocket session on /ws (generate, abort, subscribe)."""
        url = self._base_url.replace("http", "ws", 1) + "/ws"
        return WebSocketSession(url, self._api_key, self._timeout)

    def get_logs(
        self, level: str | None = None, since: float | None = None, limit: int | None = None
    ) -> list[dict[str, Any]]:
        params = query(level=level, since=since, limit=limit)
        logs: list[dict[str, Any]] = self._call("GET", "/debug/logs", params=params)["logs"]
        return logs

    def get_profile(
        self, since: float | None = None, metric: str | None = None
    ) -> list[dict[str, Any]]:
        params = query(since=since, metric=metric)
        metrics: list[dict[str, Any]] = self._call("GET", "/debug/profile", params=params)[
            "metrics"
        ]
        return metrics
