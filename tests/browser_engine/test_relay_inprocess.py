"""TabRelay in process: the queue (one request at a time), cancelling queued and running
requests, admission and clamping, the tab's done and error messages, stop strings, and
emptying the relay when the tab goes. test_relay.py covers the same code through a real
server and a scripted tab; these cover the orderings that are hard to reach that way."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from browser_llm.core.errors import (
    CancelledError,
    InferenceError,
    StorageError,
    ValidationError,
    WebGPUError,
)
from browser_llm.core.types import GenerationParams
from browser_llm.engine.base import (
    Admitted,
    Event,
    Failed,
    Finished,
    GenerationRequest,
    Started,
    TokenText,
)
from browser_llm.engine.browser.relay import TabRelay
from browser_llm.engine.browser.tab import BrowserHandle


class Harness:
    """A relay whose tab is a list of sent messages."""

    def __init__(self, ready: bool = True, context_length: int = 100) -> None:
        self.sent: list[dict[str, Any]] = []
        self.ready = ready
        self.context_length = context_length
        self.relay = TabRelay(self.sent.append, lambda: self.ready, lambda: self.context_length)

    def handle(self, rid: str, **params: Any) -> BrowserHandle:
        request = GenerationRequest(prompt="p", params=GenerationParams(**params), request_id=rid)
        handle = BrowserHandle(request, asyncio.get_running_loop(), self.relay.cancel)
        handle.prompt = f"prompt of {rid}"
        return handle

    def tab(self, kind: str, rid: str, **fields: Any) -> None:
        self.relay.on_message(kind, {"type": kind, "id": rid, **fields})

    def sent_types(self) -> list[tuple[str, str]]:
        return [(m["type"], m["id"]) for m in self.sent]


async def events(handle: BrowserHandle) -> list[Event]:
    """The events posted to a handle so far (they arrive through the event loop)."""
    await asyncio.sleep(0)
    out = []
    while not handle._queue.empty():
        out.append(handle._queue.get_nowait())
    return out


def run(test: Callable[[], Awaitable[None]]) -> None:
    asyncio.run(test())


# ---- the queue -----------------------------------------------------------------------------
def test_one_request_at_a_time_in_order() -> None:
    async def body() -> None:
        h = Harness()
        a, b, c = h.handle("a"), h.handle("b"), h.handle("c")
        for handle in (a, b, c):
            h.relay.enqueue(handle)
        assert h.sent_types() == [("generate", "a")]
        assert h.sent[0]["data"]["prompt"] == "prompt of a"
        assert h.relay.running == 1
        h.tab("done", "a", data={"finish_reason": "stop"})
        assert h.sent_types() == [("generate", "a"), ("generate", "b")]
        h.tab("error", "b", code="VALIDATION_ERROR", message="bad grammar")
        assert h.sent_types()[-1] == ("generate", "c")
        assert isinstance((await events(a))[-1], Finished)
        failed = (await events(b))[-1]
        assert isinstance(failed, Failed) and isinstance(failed.error, ValidationError)
        assert failed.error.message == "bad grammar"

    run(body)


def test_nothing_is_sent_until_the_tab_is_ready() -> None:
    async def body() -> None:
        h = Harness(ready=False)
        a = h.handle("a")
        h.relay.enqueue(a)
        assert h.sent == [] and h.relay.running == 0
        h.ready = True
        h.relay.dispatch()
        assert h.sent_types() == [("generate", "a")]

    run(body)


def test_cancelling_a_queued_request_answers_it_and_never_sends_it() -> None:
    async def body() -> None:
        h = Harness()
        a, b, c = h.handle("a"), h.handle("b"), h.handle("c")
        for handle in (a, b, c):
            h.relay.enqueue(handle)
        b.cancel()
        [failed] = await events(b)
        assert isinstance(failed, Failed) and isinstance(failed.error, CancelledError)
        h.tab("done", "a", data={})
        assert h.sent_types() == [("generate", "a"), ("generate", "c")]

    run(body)


def test_cancelling_the_running_request_aborts_it_and_waits_for_the_tab() -> None:
    async def body() -> None:
        h = Harness()
        a, b = h.handle("a"), h.handle("b")
        h.relay.enqueue(a)
        h.relay.enqueue(b)
        h.tab("admitted", "a", prompt_tokens=3)
        h.tab("token", "a", text="Hel")
        a.cancel()
        assert h.sent_types() == [("generate", "a"), ("abort", "a")]
        got = await events(a)
        assert isinstance(got[-1], Failed) and isinstance(got[-1].error, CancelledError)
        # The tab is still busy with "a" until it says so: "b" waits.
        assert h.sent_types()[-1] == ("abort", "a")
        assert h.relay.running == 0  # the client's side of "a" has ended
        h.tab("token", "a", text="lo")  # late words of the aborted request
        assert await events(a) == []
        h.tab("error", "a", code="CANCELLED", message="aborted")
        assert await events(a) == []  # answered once only
        assert h.sent_types()[-1] == ("generate", "b")

    run(body)


def test_messages_for_other_ids_are_ignored() -> None:
    async def body() -> None:
        h = Harness()
        a = h.handle("a")
        h.relay.enqueue(a)
        h.tab("token", "zzz", text="stray")
        h.tab("done", "zzz", data={})
        h.tab("error", "zzz", message="out of memory")
        assert await events(a) == []
        assert h.relay.running == 1 and h.relay.memory_errors == 0

    run(body)


# ---- admission ------------------------------------------------------------------------------
def test_admitted_clamps_max_tokens_to_the_context_left() -> None:
    async def body() -> None:
        h = Harness(context_length=100)
        a = h.handle("a", max_tokens=50)
        h.relay.enqueue(a)
        h.tab("admitted", "a", prompt_tokens=80)
        h.tab("admitted", "a", prompt_tokens=5)  # a second one changes nothing
        admitted, started = await events(a)
        assert admitted == Admitted(80, 20, True)
        assert isinstance(started, Started) and started.queue_s >= 0

    run(body)


def test_admitted_without_clamping() -> None:
    async def body() -> None:
        h = Harness(context_length=100)
        a = h.handle("a", max_tokens=20)
        h.relay.enqueue(a)
        h.tab("admitted", "a", prompt_tokens=80)
        assert (await events(a))[0] == Admitted(80, 20, False)

    run(body)


def test_a_token_before_admitted_admits_with_an_unknown_prompt() -> None:
    async def body() -> None:
        h = Harness(context_length=100)
        a = h.handle("a", max_tokens=500)
        h.relay.enqueue(a)
        h.tab("token", "a", text="Hi")
        h.tab("token", "a", text="")  # empty and non-text pieces are ignored
        h.tab("token", "a", text=7)
        got = await events(a)
        # Unknown prompt size: not clamped here (the tab enforces its own context).
        assert got[0] == Admitted(0, 100, False)
        assert isinstance(got[1], Started)
        assert got[2:] == [TokenText("Hi")]
        assert h.relay.tokens_total == 1

    run(body)


# ---- done -------------------------------------------------------------------------------------
def test_done_builds_the_completion_from_the_tabs_counts() -> None:
    async def body() -> None:
        h = Harness()
        a = h.handle("a", max_tokens=3)
        h.relay.enqueue(a)
        h.tab("admitted", "a", prompt_tokens=4)
        for piece in ("Hello", ",", " world"):
            h.tab("token", "a", text=piece)
        h.tab("done", "a", data={"finish_reason": "length", "completion_tokens": 5})
        got = await events(a)
        assert [e.text for e in got if isinstance(e, TokenText)] == ["Hello", ",", " world"]
        finished = got[-1]
        assert isinstance(finished, Finished)
        completion = finished.completion
        assert completion.text == "Hello, world"
        assert completion.finish_reason == "length"
        assert (completion.usage.prompt_tokens, completion.usage.completion_tokens) == (4, 5)
        assert a.tokens_generated == 5
        assert h.relay.tokens_total == 5  # the tab's count replaces the pieces seen
        assert h.relay.running == 0 and h.relay.run is None

    run(body)


def test_done_with_an_odd_finish_reason_is_stop() -> None:
    async def body() -> None:
        h = Harness()
        for rid, data in (("a", {"finish_reason": "eos"}), ("b", "nonsense"), ("c", {})):
            handle = h.handle(rid)
            h.relay.enqueue(handle)
            h.tab("done", rid, data=data)
            finished = (await events(handle))[-1]
            assert isinstance(finished, Finished)
            assert finished.completion.finish_reason == "stop"
            assert finished.completion.text == ""

    run(body)


def test_a_stop_string_ends_the_request_and_aborts_the_tab() -> None:
    async def body() -> None:
        h = Harness()
        a, b = h.handle("a", stop=("END",)), h.handle("b")
        h.relay.enqueue(a)
        h.relay.enqueue(b)
        for piece in ("one ", "two E", "ND three"):
            h.tab("token", "a", text=piece)
        got = await events(a)
        assert "".join(e.text for e in got if isinstance(e, TokenText)) == "one two "
        finished = got[-1]
        assert isinstance(finished, Finished)
        assert finished.completion.text == "one two "
        assert finished.completion.finish_reason == "stop"
        assert ("abort", "a") in h.sent_types()
        h.tab("token", "a", text=" more")  # the tab had not stopped yet
        assert await events(a) == []
        assert h.sent_types()[-1] == ("abort", "a")  # "b" waits for the tab
        h.tab("done", "a", data={"finish_reason": "stop"})
        assert h.sent_types()[-1] == ("generate", "b")

    run(body)


# ---- errors -----------------------------------------------------------------------------------
def test_tab_errors_map_to_their_codes() -> None:
    async def body() -> None:
        h = Harness()
        cases: list[tuple[dict[str, Any], type, str]] = [
            ({"code": "WEBGPU_ERROR", "message": "device lost"}, WebGPUError, "device lost"),
            ({"code": "STORAGE_ERROR", "message": "quota"}, StorageError, "quota"),
            ({"code": "SOMETHING_NEW", "message": "odd"}, InferenceError, "odd"),
            ({"message": 42}, InferenceError, "the browser engine failed"),
            ({}, InferenceError, "the browser engine failed"),
        ]
        for i, (fields, cls, message) in enumerate(cases):
            handle = h.handle(f"r{i}")
            h.relay.enqueue(handle)
            h.tab("error", f"r{i}", **fields, details={"step": i})
            failed = (await events(handle))[-1]
            assert isinstance(failed, Failed)
            assert type(failed.error) is cls, fields
            assert failed.error.message == message
            assert failed.error.details == {"step": i}
        assert h.relay.memory_errors == 0

    run(body)


def test_memory_failures_are_counted() -> None:
    async def body() -> None:
        h = Harness()
        for i, fields in enumerate(
            [
                {"code": "WEBGPU_ERROR", "message": "out of memory on the GPU"},
                {"message": "wasm memory exhausted"},
                {"code": "VALIDATION_ERROR", "message": "memory"},  # a client fault: not counted
            ]
        ):
            handle = h.handle(f"r{i}")
            h.relay.enqueue(handle)
            h.tab("error", f"r{i}", **fields)
        assert h.relay.memory_errors == 2

    run(body)


def test_an_overlong_error_message_is_cut() -> None:
    async def body() -> None:
        h = Harness()
        a = h.handle("a")
        h.relay.enqueue(a)
        h.tab("error", "a", message="x" * 10_000)
        failed = (await events(a))[-1]
        assert isinstance(failed, Failed) and len(failed.error.message) == 500

    run(body)


# ---- the tab goes -----------------------------------------------------------------------------
def test_fail_all_answers_the_running_and_the_queued_requests() -> None:
    async def body() -> None:
        h = Harness()
        a, b, c = h.handle("a"), h.handle("b"), h.handle("c")
        for handle in (a, b, c):
            h.relay.enqueue(handle)
        h.tab("token", "a", text="Hi")
        gone = InferenceError("the browser tab went away")
        h.relay.fail_all(gone)
        for handle in (a, b, c):
            last = (await events(handle))[-1]
            assert isinstance(last, Failed) and last.error is gone
        assert h.relay.run is None and h.relay.running == 0
        assert h.relay.take_all() == (None, [])
        # A new tab starts from an empty relay.
        d = h.handle("d")
        h.relay.enqueue(d)
        assert h.sent_types()[-1] == ("generate", "d")

    run(body)


def test_take_all_leaves_out_a_run_the_client_already_left() -> None:
    async def body() -> None:
        h = Harness()
        a, b = h.handle("a"), h.handle("b")
        h.relay.enqueue(a)
        h.relay.enqueue(b)
        a.cancel()
        run_left, queued = h.relay.take_all()
        assert run_left is None  # its client got its answer already
        assert queued == [b]
        assert h.relay.run is None

    run(body)
