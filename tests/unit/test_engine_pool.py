"""EnginePool's mechanics over fake engines: routing, LRU eviction, unload, memory check."""

from __future__ import annotations

import asyncio

import pytest

from browser_llm.core.errors import StorageError
from browser_llm.engine.base import Finished, GenerationHandle, GenerationRequest
from browser_llm.engine.pool import EnginePool
from tests.fakes import FakeEngine


class Counted(FakeEngine):
    """A fake engine that records whether it was shut down."""

    def __init__(self) -> None:
        super().__init__()
        self.stopped = False

    def shutdown(self) -> None:
        self.stopped = True


def pool_of(max_models: int, **kw: object) -> tuple[EnginePool, list[Counted]]:
    made: list[Counted] = []

    def factory() -> Counted:
        made.append(Counted())
        return made[-1]

    pool = EnginePool(factory, max_models, **kw)  # type: ignore[arg-type]
    pool.start()
    return pool, made


async def finish(handle: GenerationHandle) -> str:
    async for event in handle.events():
        if isinstance(event, Finished):
            return event.completion.text
    raise AssertionError("failed")


async def answered_by(pool: EnginePool, model: str | None) -> str:
    handle = pool.submit(GenerationRequest(prompt="hi", model=model))
    first = await handle.next_event()
    await finish(handle)
    return getattr(first, "model_id", "")


def test_each_model_has_its_engine_and_requests_follow_their_model() -> None:
    async def run() -> None:
        pool, made = pool_of(2)
        await pool.load("a", "/a")
        await pool.load("b", "/b")
        assert len(made) == 2 and [e.loads for e in made] == [["a"], ["b"]]
        assert await answered_by(pool, "a") == "a"
        assert await answered_by(pool, "b") == "b"
        assert await answered_by(pool, None) == "b"  # the most recently used
        pool.touch("a")
        assert pool.model is not None and pool.model.model_id == "a"
        assert [r.model.model_id for r in pool.residents()] == ["a", "b"]

    asyncio.run(run())


def test_a_full_pool_swaps_the_least_recently_used_idle_model() -> None:
    async def run() -> None:
        pool, made = pool_of(2)
        await pool.load("a", "/a")
        await pool.load("b", "/b")
        await answered_by(pool, "a")  # b is now the least recently used
        await pool.load("c", "/c")
        assert len(made) == 2  # c took b's engine
        assert made[1].loads == ["b", "c"]
        assert {r.model.model_id for r in pool.residents()} == {"a", "c"}

    asyncio.run(run())


def test_a_busy_model_is_not_the_one_swapped_out() -> None:
    async def run() -> None:
        pool, made = pool_of(2)
        await pool.load("a", "/a")
        await pool.load("b", "/b")
        busy = pool.submit(GenerationRequest(prompt="hi", model="a"))  # not yet read
        pool.touch("b")  # a: least recently used, and busy
        assert [r.busy for r in pool.residents()] == [False, True]
        await pool.load("c", "/c")  # a is LRU but busy: b goes
        assert made[0].loads == ["a"] and made[1].loads == ["b", "c"]
        assert await finish(busy)

    asyncio.run(run())


def test_unloading_ends_every_engine_but_the_last() -> None:
    async def run() -> None:
        pool, made = pool_of(3)
        for name in ("a", "b"):
            await pool.load(name, f"/{name}")
        assert await pool.unload_model("a")
        assert made[0].stopped and not made[1].stopped
        assert not await pool.unload_model("a")
        await pool.unload()
        assert not made[1].stopped and made[1].model is None  # kept, empty
        assert pool.model is None and pool.state == "idle"
        await pool.load("c", "/c")
        assert len(made) == 2 and made[1].loads == ["b", "c"]  # the spare engine

    asyncio.run(run())


def test_memory_check_counts_the_loaded_models() -> None:
    async def run() -> None:
        pool, _ = pool_of(3, memory_limit_bytes=2)  # fake models are 1 byte each
        await pool.load("a", "/a")
        pool.check_fits("b", 1)
        with pytest.raises(StorageError) as info:
            pool.check_fits("b", 2)
        assert info.value.details is not None and info.value.details["reason"] == "memory"
        pool.check_fits("a", 10**12)  # already loaded: nothing to check
        free, _ = pool_of(2, available_bytes=lambda: 10**9)
        free.check_fits("x", 10**8)
        with pytest.raises(StorageError):
            free.check_fits("x", 10**9)

    asyncio.run(run())
