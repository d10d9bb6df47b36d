"""What crosses the boundary between the server and its engine process, and how.

Messages are JSON objects framed by a 4-byte big-endian length on a Unix socket pair. JSON,
not pickle: a process that a crafted model file took over (the engine runs llama.cpp on files
from anywhere) must not run code in the server by sending a pickle. Decoders check shapes.
"""

from __future__ import annotations

import dataclasses
import json
import socket
import struct
from concurrent.futures import Future
from typing import Any

from browser_llm.core import errors as error_types
from browser_llm.core.errors import BrowserLLMError, InternalError
from browser_llm.core.types import (
    ChatMessage,
    Completion,
    Embeddings,
    GenerationParams,
    GpuDevice,
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
from browser_llm.engine.config import ContextConfig

__all__ = [
    "LOG_PREFIX",
    "MAX_MESSAGE_BYTES",
    "FrameReader",
    "WireError",
    "decode_embeddings",
    "decode_error",
    "decode_event",
    "decode_gpu_devices",
    "decode_model",
    "decode_request",
    "decode_text",
    "decode_tokens",
    "encode_embeddings",
    "encode_error",
    "encode_event",
    "encode_model",
    "encode_request",
    "encode_setup",
    "recv_message",
    "send_message",
    "settle",
]

# A request carries at most the body limit's worth of prompt; 64 MiB is far above
# any legitimate message and stops a runaway length prefix from allocating gigabytes.
MAX_MESSAGE_BYTES = 64 * 1024 * 1024
_HEADER = struct.Struct(">I")
# The engine process's log records cross its stderr as one line each: this prefix, level
# number, logger name, JSON text. Other lines are native output (asserts, crash reports).
LOG_PREFIX = "\x1eBLLM\t"


class WireError(Exception):
    """A malformed message: the other side is broken or hostile."""


# ---- framing ----------------------------------------------------------------
def send_message(sock: socket.socket, message: dict[str, Any]) -> None:
    # ASCII escapes carry any Python str, lone surrogates included (a request may hold one;
    # the engine answers it as it would in process).
    data = json.dumps(message, separators=(",", ":")).encode("ascii")
    sock.sendall(_HEADER.pack(len(data)) + data)


def _recv_exact(sock: socket.socket, n: int) -> bytes | None:
    chunks: list[bytes] = []
    while n:
        chunk = sock.recv(min(n, 1 << 20))
        if not chunk:
            return None
        chunks.append(chunk)
        n -= len(chunk)
    return b"".join(chunks)


def recv_message(sock: socket.socket) -> dict[str, Any] | None:
    """The next message, or None when the other side closed the socket."""
    header = _recv_exact(sock, _HEADER.size)
    if header is None:
        return None
    (size,) = _HEADER.unpack(header)
    if size > MAX_MESSAGE_BYTES:
        raise WireError(f"message of {size} bytes is over the limit")
    body = _recv_exact(sock, size)
    if body is None:
        return None
    try:
        message = json.loads(body)
    except ValueError as exc:
        raise WireError("message is not JSON") from exc
    if not isinstance(message, dict):
        raise WireError("message is not an object")
    return message


class FrameReader:
    """Frames from bytes as they arrive (the event loop reads the socket when readable)."""

    def __init__(self) -> None:
        self._buffer = bytearray()

    def feed(self, data: bytes) -> list[dict[str, Any]]:
        self._buffer += data
        out = []
        while len(self._buffer) >= _HEADER.size:
            (size,) = _HEADER.unpack_from(self._buffer)
            if size > MAX_MESSAGE_BYTES:
                raise WireError(f"message of {size} bytes is over the limit")
            end = _HEADER.size + size
            if len(self._buffer) < end:
                break
            try:
                message = json.loads(bytes(self._buffer[_HEADER.size : end]))
            except ValueError as exc:
                raise WireError("message is not JSON") from exc
            if not isinstance(message, dict):
                raise WireError("message is not an object")
            out.append(message)
            del self._buffer[:end]
        return out


# ---- errors -------------------------------------------------------------------
_ERRORS: dict[str, type[BrowserLLMError]] = {
    cls.code: cls
    for cls in vars(error_types).values()
    if isinstance(cls, type) and issubclass(cls, BrowserLLMError) and cls is not BrowserLLMError
}


def encode_error(error: BrowserLLMError) -> dict[str, Any]:
    return {
        "code": error.code,
        "message": error.message,
        "details": error.details,
        "retry_after_s": error.retry_after_s,
    }


def decode_error(data: Any) -> BrowserLLMError:
    try:
        cls = _ERRORS.get(data["code"], InternalError)
        details = data.get("details")
        retry = data.get("retry_after_s")
        return cls(
            str(data["message"]),
            details if isinstance(details, dict) else None,
            int(retry) if retry is not None else None,
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise WireError("malformed error") from exc


# ---- requests -------------------------------------------------------------------
def _encode_message(m: ChatMessage) -> list[Any]:
    if not m.tool_calls and m.tool_call_id is None and not m.reasoning:
        return [m.role, m.content]
    out = [m.role, m.content, [list(c) for c in m.tool_calls], m.tool_call_id]
    return [*out, m.reasoning] if m.reasoning else out


def _decode_message(data: Any) -> ChatMessage:
    role, content = str(data[0]), str(data[1])
    if len(data) == 2:
        return ChatMessage(role, content)
    calls = tuple((str(i), str(n), str(a)) for i, n, a in data[2])
    reasoning = str(data[4]) if len(data) > 4 else ""
    return ChatMessage(role, content, calls, None if data[3] is None else str(data[3]), reasoning)


def encode_request(request: GenerationRequest) -> dict[str, Any]:
    messages = request.messages
    return {
        "prompt": request.prompt,
        "messages": [_encode_message(m) for m in messages] if messages is not None else None,
        "tools": request.tools,
        "raw": request.raw,
        "params": dataclasses.asdict(request.params),
        "request_id": request.request_id,
        "engine": request.engine,
        "submitted_at": request.submitted_at,
        "logprobs": request.logprobs,
        "template_vars": request.template_vars,  # pairs: JSON lists
    }


def decode_request(data: Any) -> GenerationRequest:
    try:
        params = dict(data["params"])
        params["stop"] = tuple(str(s) for s in params.get("stop", ()))
        params["logit_bias"] = tuple((int(t), float(b)) for t, b in params.get("logit_bias", ()))
        messages = data["messages"]
        return GenerationRequest(
            prompt=data["prompt"],
            messages=tuple(_decode_message(m) for m in messages) if messages is not None else None,
            tools=None if data.get("tools") is None else str(data["tools"]),
            raw=bool(data["raw"]),
            params=GenerationParams(**params),
            request_id=str(data["request_id"]),
            engine=data["engine"],
            submitted_at=float(data["submitted_at"]),
            logprobs=_top_count(data.get("logprobs")),
            template_vars=tuple((str(k), bool(v)) for k, v in data.get("template_vars", ())),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise WireError("malformed request") from exc


def _top_count(value: Any) -> int | None:
    if value is None:
        return None
    if type(value) is not int or not 0 <= value <= _MAX_TOP:
        raise ValueError("logprobs must be an int 0-20 or null")
    return value


# ---- log-probabilities ----------------------------------------------------------
# [token, piece as hex, logprob or null, text_offset, [[token, piece hex, logprob], ...]]
_MAX_TOP = 20
_MAX_PIECE_BYTES = 4096


def _encode_logprob(entry: TokenLogprob) -> list[Any]:
    c = entry.chosen
    top = [[t.token, t.piece.hex(), t.logprob] for t in entry.top]
    return [c.token, c.piece.hex(), c.logprob, entry.text_offset, top]


def _choice(token: Any, piece: Any, logprob: Any) -> TokenChoice:
    if type(token) is not int or not isinstance(piece, str) or len(piece) > 2 * _MAX_PIECE_BYTES:
        raise ValueError("malformed token")
    if logprob is not None and not isinstance(logprob, int | float):
        raise ValueError("malformed logprob")
    return TokenChoice(token, bytes.fromhex(piece), None if logprob is None else float(logprob))


def _decode_logprob(data: Any) -> TokenLogprob:
    token, piece, logprob, offset, top = data
    if type(offset) is not int or not isinstance(top, list) or len(top) > _MAX_TOP:
        raise ValueError("malformed logprob entry")
    return TokenLogprob(
        chosen=_choice(token, piece, logprob),
        top=tuple(_choice(*item) for item in top),
        text_offset=offset,
    )


# ---- events -------------------------------------------------------------------
def encode_event(event: Event) -> list[Any]:
    if isinstance(event, TokenText):
        if event.logprobs:
            return ["T", event.text, [_encode_logprob(e) for e in event.logprobs]]
        return ["T", event.text]
    if isinstance(event, Started):
        return ["S", event.queue_s]
    if isinstance(event, Admitted):
        return ["A", event.prompt_tokens, event.max_tokens, event.clamped, event.model_id]
    if isinstance(event, Finished):
        return ["F", dataclasses.asdict(event.completion)]
    return ["E", encode_error(event.error)]


def _completion(data: dict[str, Any]) -> Completion:
    return Completion(
        text=str(data["text"]),
        finish_reason=data["finish_reason"],
        usage=Usage(**data["usage"]),
        timings=Timings(**data["timings"]),
        max_tokens_clamped=bool(data["max_tokens_clamped"]),
        closed_early=bool(data.get("closed_early", False)),
        closing=str(data.get("closing", "")),
        stop_sequence=stop if isinstance(stop := data.get("stop_sequence"), str) else None,
    )


def decode_event(data: Any) -> Event:
    try:
        kind = data[0]
        if kind == "T":
            if len(data) > 2:
                return TokenText(str(data[1]), tuple(_decode_logprob(e) for e in data[2]))
            return TokenText(str(data[1]))
        if kind == "S":
            return Started(float(data[1]))
        if kind == "A":
            return Admitted(int(data[1]), int(data[2]), bool(data[3]), str(data[4]))
        if kind == "F":
            return Finished(_completion(data[1]))
        if kind == "E":
            return Failed(decode_error(data[1]))
    except (KeyError, IndexError, TypeError, ValueError) as exc:
        raise WireError("malformed event") from exc
    raise WireError(f"unknown event kind {kind!r}")


# ---- models -------------------------------------------------------------------
def encode_model(model: LoadedModel) -> dict[str, Any]:
    return dataclasses.asdict(model)


def decode_model(data: Any) -> LoadedModel:
    try:
        fields = dict(data)
        fields["metadata"] = {str(k): str(v) for k, v in fields.get("metadata", {}).items()}
        return LoadedModel(**fields)
    except (TypeError, ValueError) as exc:
        raise WireError("malformed model") from exc


def decode_gpu_devices(data: Any) -> tuple[GpuDevice, ...]:
    """The engine process's GPU list (its hello); anything malformed is a WireError."""
    if data is None:
        return ()
    try:
        devices = []
        for item in data:
            kind = item["kind"]
            if kind not in ("gpu", "igpu"):
                raise ValueError(kind)
            devices.append(
                GpuDevice(
                    name=str(item["name"])[:200],
                    description=str(item["description"])[:200],
                    kind=kind,
                    memory_total_bytes=max(0, int(item["memory_total_bytes"])),
                    memory_free_bytes=max(0, int(item["memory_free_bytes"])),
                )
            )
        return tuple(devices[:64])
    except (TypeError, ValueError, KeyError) as exc:
        raise WireError("malformed GPU device list") from exc


def encode_embeddings(result: Embeddings) -> dict[str, Any]:
    return dataclasses.asdict(result)


def decode_embeddings(data: Any) -> Embeddings:
    try:
        vectors = [[float(v) for v in vector] for vector in data["vectors"]]
        return Embeddings(str(data["model_id"]), vectors, int(data["prompt_tokens"]))
    except (KeyError, TypeError, ValueError) as exc:
        raise WireError("malformed embeddings") from exc


# ---- vocabulary results ------------------------------------------------------------
def decode_tokens(data: Any) -> list[int]:
    if not isinstance(data, list) or not all(type(t) is int for t in data):
        raise WireError("malformed token list")
    return data


def decode_text(data: Any) -> str:
    if not isinstance(data, str):
        raise WireError("malformed text")
    return data


def settle(done: Future[Any], op: str, message: dict[str, Any]) -> None:
    """Resolves an operation's future from its `done` message: the op's value, or its error."""
    if not message.get("ok"):
        done.set_exception(decode_error(message["error"]))
    elif op == "embed":
        done.set_result(decode_embeddings(message.get("embeddings")))
    elif "value" in message:  # tokenize / detokenize: checked by the caller
        done.set_result(message["value"])
    else:
        done.set_result(decode_model(message["model"]) if message.get("model") else None)


def encode_setup(config: ContextConfig, fault_inject: bool, log_level: str) -> dict[str, Any]:
    """The first message to a new engine process: how to build its engine."""
    return {
        "config": dataclasses.asdict(config),
        "fault_inject": fault_inject,
        "log_level": log_level,
    }
