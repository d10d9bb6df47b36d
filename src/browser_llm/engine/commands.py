"""What the event loop (or the engine process's reader) tells the engine thread."""

from __future__ import annotations

from concurrent.futures import Future
from dataclasses import dataclass

from browser_llm.core.types import Embeddings, LoadedModel
from browser_llm.engine.base import GenerationHandle

__all__ = ["Command", "Embed", "Load", "Stop", "Submit", "Unload"]


@dataclass
class Load:
    model_id: str
    path: str
    done: Future[LoadedModel]


@dataclass
class Unload:
    done: Future[None]


@dataclass
class Submit:
    handle: GenerationHandle


@dataclass
class Embed:
    texts: list[str]
    done: Future[Embeddings]


class Stop:
    pass


Command = Load | Unload | Submit | Embed | Stop
