"""Where model files live on disk, how much room they take, and the room checks.

Layout of models_dir: ``<id>.gguf`` (downloaded or assembled, complete and
checked), ``<id>.gguf.partial`` (a download in progress, resumable),
``user-models.json`` (models the user added). ``path_for`` is the one way to
find a model's file (the browser engine serves its bytes from there too).
"""

from __future__ import annotations

import importlib.util
import shutil
from pathlib import Path

from browser_llm.core.errors import StorageError
from browser_llm.models.catalog import CatalogEntry
from browser_llm.models.ids import validate_model_id

__all__ = ["ModelStore"]

_GB = 1024**3
# Keep this much disk free beyond a download, so the system is not left full.
_DISK_MARGIN = 256 * 1024 * 1024


def _package_dirs(package: str) -> list[Path]:
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        return []
    return [Path(p) for p in spec.submodule_search_locations]


class ModelStore:
    """Resolves catalog entries to GGUF files: packaged ones, local files, or models_dir."""

    def __init__(self, models_dir: Path, quota_gb: float | None = None) -> None:
        self.models_dir = models_dir
        self.quota_gb = quota_gb

    def target_path(self, entry: CatalogEntry) -> Path:
        """Where a downloaded or assembled model lives (whether or not it exists yet)."""
        return self.models_dir / f"{validate_model_id(entry.id)}.gguf"

    def partial_path(self, entry: CatalogEntry) -> Path:
        return self.models_dir / f"{validate_model_id(entry.id)}.gguf.partial"

    def package_installed(self, entry: CatalogEntry) -> bool:
        return bool(entry.source.package and _package_dirs(entry.source.package))

    def path_for(self, entry: CatalogEntry) -> Path | None:
        """The model's complete file if it is on disk, else None."""
        source = entry.source
        if source.type == "package" and source.package and source.file:
            for folder in _package_dirs(source.package):
                candidate = folder / source.file
                if candidate.is_file():
                    return candidate
            return None
        if source.type == "file" and source.file:
            candidate = Path(source.file)
            return candidate if candidate.is_file() else None
        candidate = self.target_path(entry)
        return candidate if candidate.is_file() else None

    def is_local(self, entry: CatalogEntry) -> bool:
        """On disk, or buildable without the network (an installed chunk package)."""
        if self.path_for(entry) is not None:
            return True
        return entry.source.assemble and self.package_installed(entry)

    def partial_bytes(self, entry: CatalogEntry) -> int:
        try:
            return self.partial_path(entry).stat().st_size
        except OSError:
            return 0

    def used_bytes(self, entries: list[CatalogEntry]) -> int:
        """Bytes of every model file in use: packaged, added, downloaded, and partials."""
        paths = {p.resolve() for e in entries if (p := self.path_for(e)) is not None}
        total = sum(p.stat().st_size for p in paths)
        if self.models_dir.is_dir():
            total += sum(p.stat().st_size for p in self.models_dir.glob("*.partial"))
        return total

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

    def check_room(self, needed: int, used: int) -> None:
        """Raises STORAGE_ERROR when `needed` more bytes would break the quota or fill the disk."""
        free = self.free_bytes()
        quota = self.quota_bytes(used)
        details = {"needed_bytes": needed, "used_bytes": used, "free_bytes": free}
        if self.quota_gb is not None and used + needed > quota:
            raise StorageError(
                f"storage quota exceeded: {needed} more bytes would make {used + needed} of "
                f"{quota} allowed (BROWSER_LLM_STORAGE_QUOTA_GB)",
                {**details, "reason": "quota", "quota_bytes": quota},
            )
        if needed + _DISK_MARGIN > free:
            raise StorageError(
                f"not enough free disk: {needed} bytes needed, {free} free "
                f"(keeping {_DISK_MARGIN} spare)",
                {**details, "reason": "disk_full"},
            )
