"""AsyncBrowserLLMClient: the asyncio twin of BrowserLLMClient."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
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

__all__ = ["AsyncBrowserLLMClient", "AsyncTokenStream"]


class AsyncTokenStream:
    """`async for` tokens; afterwards `completion` holds the final GenerateResponse."""

    def __init__(self, chunks: AsyncIterator[bytes]) -> None:
        self._chunks = chunks
        self._state = StreamState()

    @property
    def completion(self) -> dict[str, Any] | None:
        return self._state.completion

    async def __aiter__(self) -> AsyncIterator[str]:
        async for chunk in self._chunks:
            for token in self._state.tokens(chunk):
                yield token


class AsyncBrowserLLMClient:
    def __init__(
        self,
        base_url: str = DEFAULT_BASE_URL,
        api_key: str | None = None,
        timeout: float = 120.0,
        retries: int = 0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.retries = retries
        self._http = httpx.AsyncClient(
            base_url=base_url.rstrip("/"),
            headers=headers_for(api_key),
            timeout=timeout,
            transport=transport,
        )

    async def __aenter__(self) -> AsyncBrowserLLMClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        await self._http.aclose()

    async def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        attempt = 0
        while True:
            try:
                return unwrap(await self._http.request(method, path, **kwargs))
            except httpx.TransportError as exc:
                raise BrowserLLMError("CONNECTION_ERROR", str(exc)) from exc
            except BrowserLLMError as error:
                wait = backoff_seconds(error, attempt)
                if wait is None or attempt >= self.retries:
                    raise
                await asyncio.sleep(wait)
                attempt += 1

    async def generate(self, prompt: str, **params: Any) -> dict[str, Any]:
        result: dict[str, Any] = await self._call(
            "POST", "/generate", json={**params, "prompt": prompt, "stream": False}
        )
        return result

    def generate_stream(self, prompt: str, **params: Any) -> AsyncTokenStream:
        body = {**params, "prompt": prompt, "stream": True}

        async def chunks() -> AsyncIterator[bytes]:
            async with self._http.stream("POST", "/generate", json=body) as response:
                if not response.is_success:
                    await response.aread()
                    raise error_from(response, response.json())
                async for chunk in response.aiter_bytes():
                    yield chunk

        return AsyncTokenStream(chunks())

    async def get_models(self) -> dict[str, Any]:
        """GET /models: the spec's ModelsResponse, ``{"models": [...]}``."""
        models: dict[str, Any] = await self._call("GET", "/models")
        return models

    async def get_model(self, model_id: str) -> dict[str, Any]:
        model: dict[str, Any] = await self._call("GET", f"/models/{model_id}")
        return model

    async def load_model(
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
        result: dict[str, Any] = await self._call("POST", path, params={"retry": "true"})
        while wait and result.get("status") == "loading":
            if progress is not None:
                progress(float(result.get("progress") or 0.0))
            await asyncio.sleep(poll_s)
            result = await self._call("POST", path)
        if wait and result.get("status") == "error":
            raise load_error(result)
        if progress is not None and result.get("status") == "loaded":
            progress(1.0)
        return result

    async def unload_model(self, model_id: str) -> dict[str, Any]:
        result: dict[str, Any] = await self._call("POST", f"/models/{model_id}/unload")
        return result

    async def get_status(self) -> dict[str, Any]:
        status: dict[str, Any] = await self._call("GET", "/status")
        return status

    async def get_logs(
        self, level: str | None = None, since: float | None = None, limit: int | None = None
    ) -> list[dict[str, Any]]:
        params = query(level=level, since=since, limit=limit)
        logs: list[dict[str, Any]] = (await self._call("GET", "/debug/logs", params=params))["logs"]
        return logs

    async def get_profile(
        self, since: float | None = None, metric: str | None = None
    ) -> list[dict[str, Any]]:
        params = query(since=since, metric=metric)
        data = await self._call("GET", "/debug/profile", params=params)
        metrics: list[dict[str, Any]] = data["metrics"]
        return metrics
