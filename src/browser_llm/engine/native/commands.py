"""What the event loop (or the engine process's reader) tells the engine thread."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any

from browser_llm.core.types import Embeddings, EmbedInput, LoadedModel
from browser_llm.engine.base import GenerationHandle

__all__ = ["Command", "Embed", "Load", "Stop", "Submit", "Unload", "VocabOp"]


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
    texts: list[EmbedInput]
    done: Future[Embeddings]


@dataclass
class VocabOp:
    """Work on the loaded model's vocabulary (tokenize, detokenize), run between steps.
    `work` receives the LlamaModel (typed loosely: this module does not import llama.cpp)."""

    work: Callable[[Any], Any]
    done: Future[Any]


class Stop:
    pass


Command = Load | Unload | Submit | Embed | VocabOp | Stop
