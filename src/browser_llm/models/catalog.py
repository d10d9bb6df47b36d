"""The model catalog: the models Browser LLM knows, read from catalog.json."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from importlib import resources
from typing import Any, Literal

__all__ = ["Catalog", "CatalogEntry", "ModelSource", "format_size"]

SourceType = Literal["package", "file", "url"]


@dataclass(frozen=True)
class ModelSource:
    type: SourceType
    package: str | None = None  # importable package holding the GGUF
    pip: str | None = None  # what to pip install to get that package
    file: str | None = None  # file name inside the package, or a local path
    url: str | None = None


@dataclass(frozen=True)
class CatalogEntry:
    id: str
    name: str
    description: str
    size_bytes: int
    vram_required: str
    parameters_total: str
    quantization: str
    speed_tier: str
    quality_tier: str
    capabilities: tuple[str, ...]
    source: ModelSource
    sha256: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def size(self) -> str:
        return format_size(self.size_bytes)


def format_size(size_bytes: int) -> str:
    """Human size as in the spec's examples: '2.2GB', '98MB'."""
    if size_bytes >= 1_000_000_000:
        return f"{size_bytes / 1_000_000_000:.1f}GB"
    return f"{max(1, round(size_bytes / 1_000_000))}MB"


def _entry(raw: dict[str, Any]) -> CatalogEntry:
    params = raw.get("parameters", {})
    return CatalogEntry(
        id=raw["id"],
        name=raw["name"],
        description=raw.get("description", ""),
        size_bytes=int(raw["size_bytes"]),
        vram_required=raw["vram_required"],
        parameters_total=params.get("total", "unknown"),
        quantization=params.get("quantization", "unknown"),
        speed_tier=raw["speed_tier"],
        quality_tier=raw["quality_tier"],
        capabilities=tuple(raw.get("capabilities", ())),
        source=ModelSource(**raw["source"]),
        sha256=raw.get("sha256"),
    )


class Catalog:
    """Known models by id, in catalog order."""

    def __init__(self, entries: list[CatalogEntry]) -> None:
        self._entries = {e.id: e for e in entries}

    @classmethod
    def builtin(cls) -> Catalog:
        text = resources.files("browser_llm.models").joinpath("catalog.json").read_text("utf-8")
        return cls([_entry(raw) for raw in json.loads(text)["models"]])

    def get(self, model_id: str) -> CatalogEntry | None:
        return self._entries.get(model_id)

    def all(self) -> list[CatalogEntry]:
        return list(self._entries.values())
