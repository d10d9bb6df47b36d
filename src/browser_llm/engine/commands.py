"""What the event loop (or the engine process's reader) tells the engine thread."""

from __future__ import annotations

from concurrent.futures import Future
from dataclasses import dataclass

from browser_llm.core.types import LoadedModel
from browser_llm.engine.base import GenerationHandle

__all__ = ["Command", "Load", "Stop", "Submit", "Unload"]


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


class Stop:
    pass


Command = Load | Unload | Submit | Stop
