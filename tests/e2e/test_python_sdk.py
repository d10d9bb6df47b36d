"""The Python SDK against a real server: every method, both clients."""

from __future__ import annotations

import asyncio

import pytest

from browser_llm.client import (
    AsyncBrowserLLMClient,
    BrowserLLMClient,
    ModelNotLoadedError,
    NotFoundError,
    ValidationError,
)
from tests.e2e.conftest import Server

MODEL = "smollm2-135m-instruct-q4"


def test_sync_client_every_method(server: Server) -> None:
    with BrowserLLMClient(server.base_url) as client:
        result = client.generate("Say hello.", max_tokens=12, temperature=0)
        assert result["text"] and result["usage"]["completion_tokens"] > 0
        stream = client.generate_stream("Say hello.", max_tokens=12, temperature=0)
        tokens = list(stream)
        assert stream.completion is not None
        assert "".join(tokens) == stream.completion["text"] == result["text"]
        assert any(m["id"] == MODEL for m in client.get_models()["models"])
        assert client.get_model(MODEL)["parameters"]["quantization"] == "Q4_1"
        progress: list[float] = []
        assert client.load_model(MODEL, progress=progress.append)["status"] == "loaded"
        assert progress[-1] == 1.0
        assert client.get_status()["status"] == "ready"
        assert client.get_logs(level="info", limit=5)
        assert any(m["name"] == "completion_tokens" for m in client.get_profile())
        with pytest.raises(ValidationError) as err:
            client.generate("x", max_tokens=0)
        assert err.value.code == "VALIDATION_ERROR" and err.value.status == 400
        with pytest.raises(NotFoundError):
            client.get_model("nope")
        with pytest.raises(ValidationError):
            list(client.generate_stream("x", temperature=9))


def test_async_client_every_method(server: Server) -> None:
    async def run() -> None:
        async with AsyncBrowserLLMClient(server.base_url) as client:
            result = await client.generate("Count to three.", max_tokens=12, temperature=0)
            stream = client.generate_stream("Count to three.", max_tokens=12, temperature=0)
            tokens = [t async for t in stream]
            assert stream.completion is not None
            assert "".join(tokens) == result["text"] == stream.completion["text"]
            assert (await client.get_models())["models"]
            assert (await client.get_model(MODEL))["id"] == MODEL
            assert (await client.load_model(MODEL))["status"] == "loaded"
            assert (await client.get_status())["model"]["id"] == MODEL
            assert await client.get_logs(limit=3)
            assert await client.get_profile(metric="completion_tokens")
            with pytest.raises(NotFoundError) as err:
                await client.load_model("nope")
            assert err.value.code == "NOT_FOUND"

    asyncio.run(run())


def test_unload_then_load_again(server: Server) -> None:
    with BrowserLLMClient(server.base_url) as client:
        try:
            assert client.unload_model(MODEL)["status"] == "unloaded"
            assert client.get_status()["status"] == "idle"
            with pytest.raises(ModelNotLoadedError) as err:
                client.generate("hi", max_tokens=2)
            assert err.value.code == "MODEL_NOT_LOADED"
        finally:
            assert client.load_model(MODEL)["status"] == "loaded"
        assert client.generate("hi", max_tokens=2, temperature=0)["tokens"] >= 1


def test_websocket_session(server: Server) -> None:
    with BrowserLLMClient(server.base_url) as client, client.websocket() as ws:
        tokens: list[str] = []
        done = ws.generate(
            "one", on_token=tokens.append, prompt="Say hi.", max_tokens=8, temperature=0
        )
        assert "".join(tokens) == done["text"]
        ws.send("generate", "long", {"prompt": "Story", "max_tokens": 2000, "ignore_eos": True})
        for message in ws.messages():
            if message["type"] == "token":
                ws.abort("long")
                break
        ending = next(m for m in ws.messages() if m["type"] != "token")
        assert ending["id"] == "long" and ending["data"]["code"] == "CANCELLED"
