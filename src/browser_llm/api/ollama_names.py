"""Ollama model names -> catalog ids, and the model a generation request runs on.

Ollama names are `model[:tag]`; this server's ids have no tags, so `id` and `id:latest`
name the same model and any other tag is unknown (404, as Ollama answers).
"""

from __future__ import annotations

import time

from browser_llm.core.errors import ModelNotFoundError, ValidationError
from browser_llm.models.ids import is_valid_model_id
from browser_llm.service.registry import ModelRegistry, ModelView

__all__ = ["ensure_loaded", "ollama_name", "resolve"]


def ollama_name(model_id: str) -> str:
    """How Ollama's listings name a model (its tag made explicit)."""
    return f"{model_id}:latest"


def resolve(registry: ModelRegistry, name: str | None, field: str = "model") -> ModelView:
    """The catalog model a name means; 400 when missing, 404 when unknown."""
    if not name:
        raise ValidationError(f"{field} is required", {"field": field})
    model_id = name.strip()
    if model_id.endswith(":latest"):
        model_id = model_id[: -len(":latest")]
    if not is_valid_model_id(model_id) or registry.catalog.get(model_id) is None:
        raise ModelNotFoundError(f"model '{name}' not found", {"field": field})
    return registry.get(model_id)


async def ensure_loaded(registry: ModelRegistry, name: str) -> tuple[str, float]:
    """(model id, seconds spent loading it): the named model, loaded on demand as Ollama
    does when it is on disk. Until the service routes requests by model name itself
    (issue 20 item 3), the Ollama routes do this here."""
    view = resolve(registry, name)
    model_id = view.entry.id
    if view.loaded:
        return model_id, 0.0
    if not view.downloaded:
        raise ModelNotFoundError(f"model '{name}' not found, try pulling it first")
    started = time.perf_counter()
    await registry.load(model_id)
    return model_id, time.perf_counter() - started
