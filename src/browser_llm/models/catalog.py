"""The model catalog: built-in models (catalog.json) plus models the user added.

User additions (`browser-llm models add`) live in ``<models_dir>/user-models.json``
and are re-read when that file changes, so a running server sees them.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Literal

from browser_llm.core.errors import StorageError, ValidationError
from browser_llm.models.ids import validate_model_id

__all__ = ["USER_CATALOG", "Catalog", "CatalogEntry", "ModelSource", "format_size"]

SourceType = Literal["package", "file", "url"]
USER_CATALOG = "user-models.json"


@dataclass(frozen=True)
class ModelSource:
    type: SourceType
    package: str | None = None  # importable package holding the GGUF (or its assembler)
    pip: str | None = None  # what to pip install to get that package
    file: str | None = None  # file name inside the package, or a local path
    url: str | None = None
    assemble: bool = False  # the package rebuilds the GGUF from chunk packages


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
    user_added: bool = False
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def size(self) -> str:
        return format_size(self.size_bytes)

    def to_raw(self) -> dict[str, Any]:
        source = {k: v for k, v in asdict(self.source).items() if v not in (None, False)}
        return {
            "id": self.id,
            "name": self.name,
            "description": self.description,
            "size_bytes": self.size_bytes,
            "vram_required": self.vram_required,
            "parameters": {"total": self.parameters_total, "quantization": self.quantization},
            "speed_tier": self.speed_tier,
            "quality_tier": self.quality_tier,
            "capabilities": list(self.capabilities),
            "source": source,
            "sha256": self.sha256,
        }


def format_size(size_bytes: int) -> str:
    """Human size as in the spec's examples: '2.2GB', '98MB'."""
    if size_bytes >= 1_000_000_000:
        return f"{size_bytes / 1_000_000_000:.1f}GB"
    return f"{max(1, round(size_bytes / 1_000_000))}MB"


def _entry(raw: dict[str, Any], user_added: bool = False) -> CatalogEntry:
    params = raw.get("parameters", {})
    sha = raw.get("sha256")
    return CatalogEntry(
        id=validate_model_id(raw["id"]),
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
        sha256=sha.lower() if isinstance(sha, str) else None,
        user_added=user_added,
    )


def _builtin_entries() -> list[CatalogEntry]:
    text = resources.files("browser_llm.models").joinpath("catalog.json").read_text("utf-8")
    return [_entry(raw) for raw in json.loads(text)["models"]]


class Catalog:
    """Known models by id, built-in first, then the user's, in file order."""

    def __init__(self, entries: list[CatalogEntry], models_dir: Path | None = None) -> None:
        self._builtin = {e.id: e for e in entries}
        self._models_dir = models_dir
        self._user: dict[str, CatalogEntry] = {}
        self._user_stamp: tuple[int, int] | None = None

    @classmethod
    def builtin(cls, models_dir: Path | None = None) -> Catalog:
        return cls(_builtin_entries(), models_dir)

    @property
    def user_file(self) -> Path | None:
        return self._models_dir / USER_CATALOG if self._models_dir else None

    def _refresh(self) -> None:
        path = self.user_file
        try:
            st = path.stat() if path else None
        except FileNotFoundError:
            st = None
        stamp = (st.st_mtime_ns, st.st_size) if st else None
        if stamp == self._user_stamp:
            return
        self._user_stamp = stamp
        self._user = {}
        if path is None or st is None:
            return
        try:
            raws = json.loads(path.read_text("utf-8")).get("models", [])
            entries = [_entry(raw, user_added=True) for raw in raws]
        except (OSError, ValueError, KeyError, TypeError, ValidationError) as exc:
            raise StorageError(
                f"{path} is not a valid model list: {exc}", {"reason": "user_catalog"}
            ) from exc
        self._user = {e.id: e for e in entries if e.id not in self._builtin}

    def get(self, model_id: str) -> CatalogEntry | None:
        self._refresh()
        return self._builtin.get(model_id) or self._user.get(model_id)

    def all(self) -> list[CatalogEntry]:
        self._refresh()
        return [*self._builtin.values(), *self._user.values()]

    def is_builtin(self, model_id: str) -> bool:
        return model_id in self._builtin

    def add_user_entry(self, entry: CatalogEntry) -> None:
        """Adds (or replaces) a user entry; the file is rewritten atomically."""
        if entry.id in self._builtin:
            raise ValidationError(f"'{entry.id}' is a built-in model id", {"field": "id"})
        self._refresh()
        self._write({**self._user, entry.id: entry})

    def remove_user_entry(self, model_id: str) -> bool:
        self._refresh()
        if model_id not in self._user:
            return False
        self._write({k: v for k, v in self._user.items() if k != model_id})
        return True

    def _write(self, entries: dict[str, CatalogEntry]) -> None:
        path = self.user_file
        if path is None:
            raise StorageError("no models folder is configured", {"reason": "no_models_dir"})
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps({"models": [e.to_raw() for e in entries.values()]}, indent=2))
        os.replace(tmp, path)
        self._user_stamp = None
