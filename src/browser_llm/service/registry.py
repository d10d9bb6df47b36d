"""Which models exist, which is on disk, and which one the engine holds."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

from browser_llm.core.errors import ModelLoadFailedError, ModelNotFoundError
from browser_llm.core.types import LoadedModel
from browser_llm.engine.base import Engine
from browser_llm.models.catalog import Catalog, CatalogEntry
from browser_llm.models.storage import ModelStore
from browser_llm.observability.profile import Profile

__all__ = ["ModelRegistry", "ModelView"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ModelView:
    entry: CatalogEntry
    downloaded: bool
    loaded: bool


class ModelRegistry:
    def __init__(
        self, engine: Engine, catalog: Catalog, store: ModelStore, profile: Profile | None = None
    ) -> None:
        self._engine = engine
        self._profile = profile
        self.catalog = catalog
        self.store = store
        self._lock = asyncio.Lock()

    @property
    def loaded_id(self) -> str | None:
        model = self._engine.model
        return model.model_id if model is not None else None

    def _view(self, entry: CatalogEntry) -> ModelView:
        return ModelView(
            entry=entry,
            downloaded=self.store.path_for(entry) is not None,
            loaded=self.loaded_id == entry.id,
        )

    def list(self) -> list[ModelView]:
        return [self._view(e) for e in self.catalog.all()]

    def get(self, model_id: str) -> ModelView:
        entry = self.catalog.get(model_id)
        if entry is None:
            raise ModelNotFoundError(f"model '{model_id}' is not in the catalog")
        return self._view(entry)

    async def load(self, model_id: str) -> LoadedModel:
        """Loads a model on disk (a no-op when it is the loaded one); returns it."""
        view = self.get(model_id)
        async with self._lock:
            if self.loaded_id == model_id:
                current = self._engine.model
                assert current is not None
                return current
            path = self.store.path_for(view.entry)
            if path is None:
                raise ModelLoadFailedError(
                    f"model '{model_id}' is not on disk",
                    {"model_id": model_id, "reason": "not_downloaded"},
                )
            logger.info("loading model %s from %s", model_id, path)
            info: LoadedModel = await self._engine.load(model_id, str(path))
            logger.info("model %s loaded in %.2f s", model_id, info.load_time_s)
            if self._profile is not None:
                self._profile.record("model_load_ms", info.load_time_s * 1000, model=model_id)
            return info

    async def unload(self) -> None:
        async with self._lock:
            await self._engine.unload()
