"""Catalog models in the shapes of Ollama's /api/tags, /api/show and /api/ps."""

from __future__ import annotations

import asyncio
import datetime as dt
import functools
from pathlib import Path
from typing import Any

from browser_llm.api.ollama.names import ollama_name
from browser_llm.core.errors import BrowserLLMError
from browser_llm.models.gguf_info import ModelFileInfo, read_model_info
from browser_llm.service.registry import ModelRegistry, ModelView

__all__ = ["FOREVER", "file_info", "iso_time", "model_entry", "show_body"]

# What Ollama reports as expires_at for a model kept loaded without limit.
FOREVER = "2318-01-01T00:00:00Z"


def iso_time(when: float | None = None) -> str:
    """RFC 3339 in UTC, as Ollama's created_at / modified_at."""
    moment = (
        dt.datetime.fromtimestamp(when, dt.UTC) if when is not None else dt.datetime.now(dt.UTC)
    )
    return moment.isoformat().replace("+00:00", "Z")


@functools.lru_cache(maxsize=32)
def _cached_info(path: str, mtime_ns: int, size: int) -> ModelFileInfo:
    return read_model_info(path)


async def file_info(path: Path | None) -> ModelFileInfo:
    """Header metadata of a model file (cached per file version); empty when unknown."""
    if path is None:
        return ModelFileInfo()
    try:
        st = path.stat()
        return await asyncio.to_thread(_cached_info, str(path), st.st_mtime_ns, st.st_size)
    except (OSError, BrowserLLMError):
        return ModelFileInfo()  # a listing never fails on one odd file


def _details(view: ModelView, info: ModelFileInfo) -> dict[str, Any]:
    family = info.architecture or ""
    return {
        "parent_model": "",
        "format": "gguf",
        "family": family,
        "families": [family] if family else None,
        "parameter_size": view.entry.parameters_total,
        "quantization_level": view.entry.quantization,
    }


def model_entry(registry: ModelRegistry, view: ModelView, info: ModelFileInfo) -> dict[str, Any]:
    """One model as /api/tags lists it."""
    path = registry.store.path_for(view.entry)
    size = view.entry.size_bytes
    modified = None
    if path is not None:
        st = path.stat()
        size, modified = st.st_size, st.st_mtime
    entry: dict[str, Any] = {
        "name": ollama_name(view.entry.id),
        "model": ollama_name(view.entry.id),
        "modified_at": iso_time(modified),
        "size": size,
        "details": _details(view, info),
    }
    if view.entry.sha256:
        entry["digest"] = view.entry.sha256
    return entry


# Every catalog model completes text and calls tools (through its template's Hermes format
# or the generic one). Ollama lists "embedding" only for embedding models, which these are not.
_CAPABILITIES = ("completion", "tools")


def show_body(view: ModelView, info: ModelFileInfo, modified_at: float | None) -> dict[str, Any]:
    """POST /api/show: details, the GGUF's metadata and chat template (Jinja, not Go)."""
    license_text = info.metadata.get("general.license")
    return {
        "license": license_text if isinstance(license_text, str) else "",
        "modelfile": f"# Served by Browser LLM from its model catalog\nFROM {view.entry.id}\n",
        "parameters": "",
        "template": info.chat_template or "",
        "details": _details(view, info),
        "model_info": info.metadata,
        "capabilities": list(_CAPABILITIES),
        "modified_at": iso_time(modified_at),
    }
