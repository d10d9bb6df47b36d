"""Where model files live on disk, and how much room they take."""

from __future__ import annotations

import importlib.util
import shutil
from pathlib import Path

from browser_llm.models.catalog import CatalogEntry

__all__ = ["ModelStore"]

_GB = 1024**3


class ModelStore:
    """Resolves catalog entries to GGUF files: packaged ones, or files in models_dir."""

    def __init__(self, models_dir: Path, quota_gb: float | None = None) -> None:
        self.models_dir = models_dir
        self.quota_gb = quota_gb

    def path_for(self, entry: CatalogEntry) -> Path | None:
        """The model's file if it is on disk, else None."""
        source = entry.source
        if source.type == "package" and source.package and source.file:
            spec = importlib.util.find_spec(source.package)
            if spec is None or not spec.submodule_search_locations:
                return None
            for folder in spec.submodule_search_locations:
                candidate = Path(folder) / source.file
                if candidate.is_file():
                    return candidate
            return None
        if source.type == "file" and source.file:
            candidate = Path(source.file)
            return candidate if candidate.is_file() else None
        candidate = self.models_dir / f"{entry.id}.gguf"
        return candidate if candidate.is_file() else None

    def used_bytes(self, entries: list[CatalogEntry]) -> int:
        paths = {p.resolve() for e in entries if (p := self.path_for(e)) is not None}
        return sum(p.stat().st_size for p in paths)

    def free_bytes(self) -> int:
        folder = self.models_dir
        while not folder.exists() and folder != folder.parent:
            folder = folder.parent
        return shutil.disk_usage(folder).free

    def quota_bytes(self, used: int) -> int:
        """The configured quota, or what the disk allows: used plus free."""
        if self.quota_gb is not None:
            return int(self.quota_gb * _GB)
        return used + self.free_bytes()
