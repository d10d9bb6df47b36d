"""Loads GGUF files one after another with the real engine in this process and prints
one outcome line per file: run as a child so that a file that crashes llama.cpp
cannot take the test run down."""

from __future__ import annotations

import asyncio
import sys

from browser_llm.core.errors import BrowserLLMError
from browser_llm.engine.native.engine import LlamaEngine
from browser_llm.engine.native.model import ContextConfig


async def _load_each(paths: list[str]) -> None:
    engine = LlamaEngine(ContextConfig(512, 64, 1, 0, 1))
    engine.start()
    try:
        for path in paths:
            try:
                await engine.load("crafted", path)
                outcome = "LOADED"
            except BrowserLLMError as exc:
                outcome = f"ERROR {exc.code}"
            print(f"{path}\t{outcome}", flush=True)
    finally:
        engine.shutdown()


if __name__ == "__main__":
    asyncio.run(_load_each(sys.argv[1:]))
