"""GenerationService bookkeeping on the FakeEngine: every started request ends exactly
once, a stream nobody iterates is released by close(), a drain refuses new work."""

from __future__ import annotations

import asyncio

import pytest

from browser_llm.core.errors import OverloadedError
from browser_llm.engine.base import GenerationRequest
from browser_llm.service.generation import GenerationService
from browser_llm.service.stats import RequestStats
from tests.fakes import FakeEngine


async def _service() -> GenerationService:
    engine = FakeEngine()
    await engine.load("m", "p")
    return GenerationService(engine, RequestStats(), parallel=1, max_queue=1)


def _balanced(service: GenerationService) -> bool:
    s = service.stats
    return s.requests_total == s.requests_success + s.requests_error


def test_a_stream_never_iterated_is_released_by_close() -> None:
    async def run() -> GenerationService:
        service = await _service()
        stream = await service.start(GenerationRequest(prompt="hi"))
        assert service.in_flight == 1
        stream.close()
        stream.close()  # idempotent
        return service

    service = asyncio.run(run())
    assert service.in_flight == 0 and service.waiting == 0 and not service.tickets
    assert service.stats.requests_cancelled == 1 and _balanced(service)


def test_rejections_and_successes_balance_the_counters() -> None:
    async def run() -> GenerationService:
        service = await _service()
        held = [await service.start(GenerationRequest(prompt="a")) for _ in range(2)]
        with pytest.raises(OverloadedError):
            await service.start(GenerationRequest(prompt="b"))
        for stream in held:
            await stream.collect()
        return service

    service = asyncio.run(run())
    stats = service.stats
    assert (stats.requests_success, stats.requests_rejected) == (2, 1)
    assert _balanced(service) and service.in_flight == 0


def test_drain_refuses_new_requests_and_waits_for_running_ones() -> None:
    async def run() -> tuple[GenerationService, bool, OverloadedError]:
        service = await _service()
        stream = await service.start(GenerationRequest(prompt="a"))
        drain = asyncio.create_task(service.drain(grace_s=30))
        await asyncio.sleep(0)
        with pytest.raises(OverloadedError) as refused:
            await service.start(GenerationRequest(prompt="b"))
        await stream.collect()
        return service, await drain, refused.value

    service, finished_in_time, refused = asyncio.run(run())
    assert finished_in_time and service.draining
    assert refused.details == {"reason": "shutting_down"} and refused.retry_after_s == 1
    assert _balanced(service)
