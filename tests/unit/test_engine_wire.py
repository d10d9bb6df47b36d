"""The engine process's wire format: every event, request and error survives the trip,
and malformed or oversized messages are refused (the engine process is not trusted)."""

from __future__ import annotations

import dataclasses
import socket
import struct
from dataclasses import replace

import pytest

from browser_llm.core.errors import (
    InferenceError,
    InternalError,
    ModelLoadFailedError,
    OverloadedError,
)
from browser_llm.core.types import (
    ChatMessage,
    Completion,
    GenerationParams,
    LoadedModel,
    Timings,
    TokenChoice,
    TokenLogprob,
    Usage,
)
from browser_llm.engine.base import (
    Admitted,
    Event,
    Failed,
    Finished,
    GenerationRequest,
    Started,
    TokenText,
)
from browser_llm.engine.process.exits import ChildExit, RestartPolicy
from browser_llm.engine.process.wire import (
    MAX_MESSAGE_BYTES,
    FrameReader,
    WireError,
    decode_error,
    decode_event,
    decode_model,
    decode_request,
    encode_error,
    encode_event,
    encode_model,
    encode_request,
    recv_message,
    send_message,
)

LOGPROBS = (
    TokenLogprob(
        TokenChoice(1234, b" caf\xc3", -0.25),
        (TokenChoice(1234, b" caf\xc3", -0.25), TokenChoice(7, b"", -3.5)),
        text_offset=0,
    ),
    TokenLogprob(TokenChoice(99, b"\xa9", None), (), text_offset=4),  # an unscored closing
)

COMPLETION = Completion(
    "héllo 🦙",
    "length",
    Usage(12, 5, 3),
    Timings(0.1, 0.2, 0.3, 0.05, 0.6),
    max_tokens_clamped=True,
)


@pytest.mark.parametrize(
    "event",
    [
        Admitted(12, 64, True, "smol"),
        Started(0.25),
        TokenText("a\nb \u2028 \U0001f999"),
        TokenText(" caf\u00e9", LOGPROBS),  # logprobs cross with their token bytes
        TokenText("", LOGPROBS[:1]),  # the end's entries may come without text
        Finished(COMPLETION),
        Finished(replace(COMPLETION, closed_early=True, closing="]}")),  # forced JSON closing
        Finished(replace(COMPLETION, stop_sequence="END")),  # the stop string that ended it
        Failed(InferenceError("boom", {"signal": "SIGSEGV"})),
        Failed(OverloadedError("busy", None, retry_after_s=3)),
    ],
)
def test_events_round_trip(event: Event) -> None:
    back = decode_event(encode_event(event))
    if isinstance(event, Failed):
        assert isinstance(back, Failed) and type(back.error) is type(event.error)
        assert back.error.message == event.error.message
        assert back.error.details == event.error.details
        assert back.error.retry_after_s == event.error.retry_after_s
    else:
        assert back == event


def test_request_round_trip() -> None:
    request = GenerationRequest(
        messages=(
            ChatMessage("system", "be brief"),
            ChatMessage("user", "hi"),
            ChatMessage("assistant", "4", (("call_1", "add", "{}"),), None, "2+2 is 4"),
            ChatMessage("assistant", "hello", reasoning="say hello"),
            ChatMessage("user", "hi"),
        ),
        params=GenerationParams(max_tokens=7, stop=("\n\n", "END"), seed=42, grammar="root ::= x"),
        request_id="req-1",
        engine="native",
        template_vars=(("enable_thinking", False),),
    )
    assert decode_request(encode_request(request)) == request
    plain = GenerationRequest(prompt="Hello", raw=True)
    assert decode_request(encode_request(plain)) == plain
    for top in (0, 20):
        scored = GenerationRequest(prompt="Hello", logprobs=top)
        assert decode_request(encode_request(scored)) == scored


@pytest.mark.parametrize("value", [-1, 21, "5", 2.0, True])
def test_request_with_bad_logprobs_is_refused(value: object) -> None:
    data = {**encode_request(GenerationRequest(prompt="Hello")), "logprobs": value}
    with pytest.raises(WireError):
        decode_request(data)


def test_model_round_trip() -> None:
    model = LoadedModel("m", "/p.gguf", 1024, 8192, 49152, True, 10, 0.5, "d", {"k": "v"})
    assert decode_model(encode_model(model)) == model


def test_unknown_error_code_becomes_internal_error() -> None:
    error = decode_error({"code": "NO_SUCH_CODE", "message": "x"})
    assert isinstance(error, InternalError)
    assert isinstance(decode_error(encode_error(ModelLoadFailedError("m"))), ModelLoadFailedError)


@pytest.mark.parametrize(
    "data",
    [
        ["Z", 1],
        ["A", "not a number", 1, True, "m"],
        ["F", {"text": "x"}],
        [],
        "T",
        ["T", "x", [[1, "zz", -1.0, 0, []]]],  # a piece that is not hex
        ["T", "x", [[1, "41", "-1", 0, []]]],  # a logprob that is not a number
        ["T", "x", [[1, "41", -1.0, 0, [[2, "42", -2.0]] * 21]]],  # more than 20 alternatives
        ["T", "x", [[1, "41", -1.0]]],  # an entry cut short
    ],
)
def test_malformed_events_are_refused(data: object) -> None:
    with pytest.raises(WireError):
        decode_event(data)


def test_framing_and_limits() -> None:
    a, b = socket.socketpair()
    with a, b:
        big = {"op": "submit", "text": "x" * 300_000}  # larger than a socket buffer
        send_message(a, {"op": "hello"})
        assert recv_message(b) == {"op": "hello"}
        import threading

        sender = threading.Thread(target=send_message, args=(a, big))
        sender.start()
        assert recv_message(b) == big
        sender.join()
        a.sendall(struct.pack(">I", MAX_MESSAGE_BYTES + 1))
        with pytest.raises(WireError):
            recv_message(b)
    c, d = socket.socketpair()
    with c, d:
        c.sendall(struct.pack(">I", 2) + b"[]")
        with pytest.raises(WireError):
            recv_message(d)  # JSON, but not an object
        c.close()
        assert recv_message(d) is None  # closed: the other side is gone


def test_child_exit_descriptions() -> None:
    ill = ChildExit(-4)
    assert ill.signal_name == "SIGILL" and ill.description.startswith("SIGILL: illegal")
    assert ill.hint is not None and "make serve" in ill.hint
    assert ill.details()["signal"] == "SIGILL"
    assert ChildExit(-9).looks_like_memory and not ChildExit(-11).looks_like_memory
    assert ChildExit(3).description == "exited with code 3"
    assert ChildExit(3).details()["exit_code"] == 3


def test_restart_policy_backs_off_and_gives_up() -> None:
    policy = RestartPolicy(max_streak=3, first_delay_s=0.25, max_delay_s=1.0)
    assert policy.delay_s == 0.0
    delays = []
    for _ in range(4):
        policy.died()
        delays.append(policy.delay_s)
    assert delays == [0.25, 0.5, 1.0, 1.0]
    assert policy.give_up
    policy.progressed()
    assert not policy.give_up and policy.delay_s == 0.0


def test_lone_surrogates_cross_as_they_are() -> None:
    """A prompt may hold a lone surrogate (JSON allows the escape); the wire must carry it
    to the engine, which answers it as it does in process, and never choke on it."""
    request = GenerationRequest(prompt="a\ud800b", raw=True)
    a, b = socket.socketpair()
    with a, b:
        send_message(a, {"op": "submit", "request": encode_request(request)})
        message = recv_message(b)
    assert message is not None
    assert decode_request(message["request"]) == request


def test_frame_reader_takes_bytes_as_they_arrive() -> None:
    """The event loop reads whatever the socket holds: half a frame, several frames."""
    a, b = socket.socketpair()
    with a, b:
        for message in ({"op": "events", "n": 1}, {"op": "done", "text": "é" * 5_000}):
            send_message(a, message)
        a.close()
        data = b""
        while chunk := b.recv(1 << 16):
            data += chunk
    reader = FrameReader()
    got = []
    for i in range(0, len(data), 700):  # arbitrary cuts, mid-header and mid-body
        got += reader.feed(data[i : i + 700])
    assert got == [{"op": "events", "n": 1}, {"op": "done", "text": "é" * 5_000}]
    with pytest.raises(WireError):
        FrameReader().feed(struct.pack(">I", MAX_MESSAGE_BYTES + 1))
    with pytest.raises(WireError):
        FrameReader().feed(struct.pack(">I", 2) + b"[]")


def test_gpu_devices_cross_the_hello_checked() -> None:
    from browser_llm.core.types import GpuDevice
    from browser_llm.engine.process.wire import decode_gpu_devices

    device = GpuDevice("CUDA0", "A GPU", "gpu", 8 << 30, 6 << 30)
    assert decode_gpu_devices([dataclasses.asdict(device)]) == (device,)
    assert decode_gpu_devices(None) == ()
    for bad in ([{"name": "x"}], [{**dataclasses.asdict(device), "kind": "cpu"}], 5):
        with pytest.raises(WireError):
            decode_gpu_devices(bad)


def test_this_builds_gpu_devices_are_read_from_ggml() -> None:
    # Runs in this test process (which may load llama.cpp): a CPU-only build lists no GPU;
    # a GPU build lists its devices with their memory.
    import llama_cpp

    from browser_llm.engine.native.ggml.devices import _libggml, gpu_devices

    assert _libggml().ggml_backend_dev_count() >= 1  # the CPU device at least: the read works
    devices = gpu_devices()
    if not llama_cpp.llama_supports_gpu_offload():
        assert devices == ()
    for device in devices:
        assert device.memory_total_bytes > 0 and device.name
