"""keep_alive's clocks over a real registry and a pool of fake engines."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

from browser_llm.config import DEFAULT_MODEL_ID
from browser_llm.engine.pool import EnginePool
from browser_llm.engine.process.probe import ProbeResult
from browser_llm.models.catalog import Catalog
from browser_llm.models.storage import ModelStore
from browser_llm.service.keep_alive import KeepAlive
from browser_llm.service.registry import ModelRegistry
from tests.fakes import FakeEngine
from tests.modelfiles import smollm2_path

COPY = "smollm2-copy"


async def _trusted(path: str) -> ProbeResult:
    return ProbeResult(n_params=1, has_chat_template=True)


def registry_in(models_dir: Path, max_models: int = 2) -> ModelRegistry:
    models_dir.mkdir(parents=True, exist_ok=True)
    raw = {
        "id": COPY,
        "name": COPY,
        "size_bytes": 1,
        "vram_required": "1GB",
        "speed_tier": "fast",
        "quality_tier": "basic",
        "source": {"type": "file", "file": str(smollm2_path())},
    }
    (models_dir / "user-models.json").write_text(json.dumps({"models": [raw]}))
    pool = EnginePool(FakeEngine, max_models)
    pool.start()
    catalog = Catalog.builtin(models_dir)
    return ModelRegistry(pool, catalog, ModelStore(models_dir, None), prober=_trusted, pool=pool)


async def until(check: object, timeout_s: float = 5.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not check():  # type: ignore[operator]
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.01)


def test_models_stay_for_ever_by_default(tmp_path: Path) -> None:
    async def run() -> None:
        registry = registry_in(tmp_path)
        keep = KeepAlive(registry, default_s=-1)
        await registry.load(DEFAULT_MODEL_ID)
        await registry.load(COPY)
        assert [v.model.model_id for v in keep.loaded_models()] == [COPY, DEFAULT_MODEL_ID]
        assert all(v.expires_at is None and v.keep_alive_s == -1 for v in keep.loaded_models())
        keep.close()

    asyncio.run(run())


def test_a_request_sets_its_models_clock_and_0_unloads_when_idle(tmp_path: Path) -> None:
    async def run() -> None:
        registry = registry_in(tmp_path)
        keep = KeepAlive(registry, default_s=-1)
        await registry.load(DEFAULT_MODEL_ID)
        await registry.load(COPY)
        keep.begin(COPY, 0)
        await asyncio.sleep(0.05)
        assert registry.is_resident(COPY)  # busy: never unloaded
        keep.end(COPY)
        await until(lambda: not registry.is_resident(COPY))
        assert registry.is_resident(DEFAULT_MODEL_ID)
        keep.close()

    asyncio.run(run())


def test_a_short_keep_alive_expires_and_a_new_request_restarts_the_clock(
    tmp_path: Path,
) -> None:
    async def run() -> None:
        registry = registry_in(tmp_path)
        keep = KeepAlive(registry, default_s=0.3)
        await registry.load(DEFAULT_MODEL_ID)
        expires = keep.expires_at(DEFAULT_MODEL_ID)
        assert expires is not None and 0 < expires - time.time() <= 0.3
        await asyncio.sleep(0.2)
        keep.begin(DEFAULT_MODEL_ID, None)  # the default again
        await asyncio.sleep(0.2)
        keep.end(DEFAULT_MODEL_ID)
        assert registry.is_resident(DEFAULT_MODEL_ID)  # 0.4 s after load, clock reset
        await until(lambda: not registry.is_resident(DEFAULT_MODEL_ID))
        assert registry.loaded_id is None
        keep.close()

    asyncio.run(run())


def test_an_embedding_holds_the_model_without_changing_its_keep_alive(tmp_path: Path) -> None:
    async def run() -> None:
        registry = registry_in(tmp_path)
        keep = KeepAlive(registry, default_s=-1)
        await registry.load(COPY)
        keep.begin(COPY, 600)  # a generation asked for 10 minutes
        keep.end(COPY)
        keep.begin(COPY, None, keep_duration=True)  # an embedding
        assert keep.busy(COPY) and keep.duration_s(COPY) == 600
        keep.end(COPY)
        expires = keep.expires_at(COPY)
        assert expires is not None and 590 < expires - time.time() <= 600
        keep.begin(COPY, None)  # a generation with no keep_alive: the server's default
        assert keep.duration_s(COPY) == -1
        keep.end(COPY)
        keep.close()

    asyncio.run(run())
