"""What becomes of each request and model operation when the engine process dies
(engine/process/pending.py), without a process: running requests fail naming the signal,
queued ones wait for the next process in arrival order, a load that killed it fails."""

from __future__ import annotations

import asyncio
from concurrent.futures import Future

from browser_llm.core.errors import CancelledError, InferenceError, ModelLoadFailedError
from browser_llm.engine.base import Admitted, Failed, GenerationRequest, Started, TokenText
from browser_llm.engine.process.exits import ChildExit
from browser_llm.engine.process.pending import Pending, PendingWork, ProcessHandle

SEGV = ChildExit(-11)


def _request(work: PendingWork, seq: int, loop: asyncio.AbstractEventLoop) -> ProcessHandle:
    handle = ProcessHandle(GenerationRequest(prompt=str(seq)), loop, lambda _h: None)
    handle.key = seq
    work.add(Pending(seq, {"op": "submit", "key": seq}, handle=handle, sent=True))
    return handle


def _load(work: PendingWork, seq: int) -> Future[object]:
    done: Future[object] = Future()
    message = {"op": "load", "id": seq, "model_id": "new"}
    work.add(Pending(seq, message, done=done, sent=True))
    return done


async def _first(handle: ProcessHandle) -> object:
    return await asyncio.wait_for(handle.next_event(), 1)


def test_running_fail_queued_wait_in_order() -> None:
    async def run() -> None:
        loop = asyncio.get_running_loop()
        work = PendingWork()
        running, queued, cancelled = (_request(work, i, loop) for i in (1, 2, 3))
        for handle in (running, queued, cancelled):
            assert work.route(handle.key, Admitted(1, 8, False, "m")) is handle
        assert work.route(running.key, Started(0.0)) is running
        cancelled.cancel()
        outcome = work.after_death(SEGV, serving="m")
        assert not outcome.died_at_user_load and not outcome.resolved
        failed = await _first(running)
        assert isinstance(failed, Failed) and isinstance(failed.error, InferenceError)
        assert failed.error.details is not None and failed.error.details["signal"] == "SIGSEGV"
        gone = await _first(cancelled)
        assert isinstance(gone, Failed) and isinstance(gone.error, CancelledError)
        assert [p.seq for p in work.take_unsent()] == [queued.key]  # sent again, in order
        # Run again, the queued request's second Admitted is not passed on; its tokens are.
        assert work.route(queued.key, Admitted(1, 8, False, "m")) is None
        assert work.route(queued.key, TokenText("x")) is queued

    asyncio.run(run())


def test_a_load_that_killed_the_process_fails_and_names_the_model_served_again() -> None:
    work = PendingWork()
    done = _load(work, 1)
    outcome = work.after_death(ChildExit(-6), serving="old")
    assert outcome.died_at_user_load
    ((future, error),) = outcome.resolved
    assert future is done and isinstance(error, ModelLoadFailedError)
    assert "SIGABRT" in error.message and "serving 'old' again" in error.message


def test_a_load_queued_behind_running_requests_is_sent_again() -> None:
    async def run() -> None:
        work = PendingWork()
        running = _request(work, 1, asyncio.get_running_loop())
        work.route(running.key, Started(0.0))
        _load(work, 2)
        outcome = work.after_death(SEGV, serving="old")
        assert not outcome.died_at_user_load and not outcome.resolved
        assert [p.seq for p in work.take_unsent()] == [2]
        assert work.loading

    asyncio.run(run())


def test_the_engine_process_leaves_the_not_loaded_answer_to_the_service() -> None:
    # It used to answer "no model is loaded" itself, which hid the service's better answer
    # while a model loads (details.loading, estimated_time_ms, Retry-After).
    from browser_llm.engine.config import ContextConfig
    from browser_llm.engine.process.engine import ProcessEngine

    engine = ProcessEngine(ContextConfig(512, 64, 1, 0, 1))
    assert engine.not_loaded_reason() is None
    engine.check_fits("any", 1 << 40)  # llama.cpp checks memory itself: nothing raised
