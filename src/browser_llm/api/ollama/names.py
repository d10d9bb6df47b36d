"""Ollama model names -> catalog models, through the service's model router (ids,
`id:latest`, BROWSER_LLM_ALIASES), with Ollama's own wording for unknown names."""

from __future__ import annotations

from browser_llm.core.errors import ModelNotFoundError, ValidationError
from browser_llm.service.model_router import ModelRouter
from browser_llm.service.registry import ModelRegistry, ModelView

__all__ = ["ollama_name", "resolve"]


def ollama_name(model_id: str) -> str:
    """How Ollama's listings name a model (its tag made explicit)."""
    return f"{model_id}:latest"


def resolve(
    router: ModelRouter, registry: ModelRegistry, name: str | None, field: str = "model"
) -> ModelView:
    """The catalog model a name means; 400 when missing, 404 when unknown (any tag other
    than `latest` included: this server's models have no other tags)."""
    if not name or not name.strip():
        raise ValidationError(f"{field} is required", {"field": field})
    try:
        model_id = router.resolve(name)
    except ModelNotFoundError as exc:
        raise ModelNotFoundError(f"model '{name}' not found", {"field": field}) from exc
    assert model_id is not None
    return registry.get(model_id)
