"""The browser engine's side of the tab protocol: tab readings, the handle, the
running-request record, and the translation of parameters and errors.

Messages are documented in docs/browser-engine.md.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from browser_llm.core.errors import (
    BrowserLLMError,
    CancelledError,
    ModelLoadFailedError,
    StorageError,
    UnsupportedError,
    ValidationError,
    WebGPUError,
)
from browser_llm.core.types import Completion, FinishReason, Timings, Usage
from browser_llm.engine.base import GenerationHandle, GenerationRequest
from browser_llm.engine.text_stream import TextStream

__all__ = [
    "BrowserHandle",
    "Run",
    "Tab",
    "TabReadings",
    "TabSend",
    "no_vocabulary",
    "request_id",
    "tab_error",
    "wllama_options",
]

_TAB_ERRORS: dict[str, type[BrowserLLMError]] = {
    "VALIDATION_ERROR": ValidationError,
    "WEBGPU_ERROR": WebGPUError,
    "STORAGE_ERROR": StorageError,
    "CANCELLED": CancelledError,
    "MODEL_LOAD_FAILED": ModelLoadFailedError,
}

TabSend = Callable[[dict[str, Any]], Awaitable[None]]


_ADAPTER_TEXT = ("vendor", "architecture", "device", "description")
_ADAPTER_FLAGS = ("is_fallback_adapter", "shader_f16")


@dataclass
class TabReadings:
    """What the tab measured about itself (navigator.gpu, wllama's device, navigator.storage).

    None means the tab has no such reading (see docs/browser-engine.md "Readings").
    """

    webgpu_available: bool = False
    webgpu_unavailable_reason: str | None = None
    adapter: dict[str, Any] | None = None
    backend: str | None = None
    gpu_layers_offloaded: int | None = None
    gpu_vram_gb: float | None = None
    storage_quota_gb: float = 0.0
    storage_used_gb: float = 0.0
    storage_persisted: bool | None = None
    webgpu_context_losses: int = 0
    memory_errors: int = 0
    threads: int = 0
    multi_thread: bool = False
    cached_models: tuple[str, ...] = ()

    def update(self, data: dict[str, Any]) -> None:
        for name in ("webgpu_available", "multi_thread"):
            if isinstance(data.get(name), bool):
                setattr(self, name, data[name])
        if "storage_persisted" in data:
            self.storage_persisted = _optional_bool(data["storage_persisted"])
        for name in ("storage_quota_gb", "storage_used_gb"):
            value = _size(data.get(name))
            if value is not None:
                setattr(self, name, value)
        if "gpu_vram_gb" in data:
            self.gpu_vram_gb = _size(data["gpu_vram_gb"])
        for name in ("webgpu_context_losses", "memory_errors", "threads"):
            value = data.get(name)
            if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
                setattr(self, name, value)
        if "gpu_layers_offloaded" in data:
            layers = data["gpu_layers_offloaded"]
            valid = isinstance(layers, int) and not isinstance(layers, bool) and layers >= 0
            self.gpu_layers_offloaded = layers if valid else None
        if "backend" in data:
            backend = data["backend"]
            self.backend = backend if backend in ("webgpu", "wasm") else None
        if "webgpu_unavailable_reason" in data:
            reason = data["webgpu_unavailable_reason"]
            self.webgpu_unavailable_reason = reason[:300] if isinstance(reason, str) else None
        if "adapter" in data:
            self.adapter = _adapter(data["adapter"])
        cached = data.get("cached_models")
        if isinstance(cached, list):
            self.cached_models = tuple(str(m)[:128] for m in cached[:256])


def _size(value: Any) -> float | None:
    """A non-negative figure in GB, rounded; None for anything else (null included)."""
    if isinstance(value, int | float) and not isinstance(value, bool) and value >= 0:
        return round(float(value), 3)
    return None


def _optional_bool(value: Any) -> bool | None:
    return value if isinstance(value, bool) else None


def _adapter(value: Any) -> dict[str, Any] | None:
    """The adapter's GPUAdapterInfo as the tab sent it, kept to known, bounded fields."""
    if not isinstance(value, dict):
        return None
    adapter: dict[str, Any] = {k: str(value.get(k) or "")[:200] for k in _ADAPTER_TEXT}
    adapter |= {k: bool(value.get(k)) for k in _ADAPTER_FLAGS}
    return adapter


@dataclass
class Tab:
    """One attached browser tab. `send` puts a message on its socket."""

    send: TabSend
    id: str = field(default_factory=lambda: uuid.uuid4().hex[:12])
    readings: TabReadings = field(default_factory=TabReadings)
    attached_at: float = field(default_factory=time.time)
    user_agent: str = ""
    last_seen: float = field(default_factory=time.monotonic)  # any message counts


@dataclass
class Run:
    """The generation the tab is working on."""

    handle: BrowserHandle
    dispatched_at: float
    text: TextStream
    admitted: bool = False
    prompt_tokens: int = 0
    clamped: bool = False
    first_token_at: float | None = None
    last_token_at: float | None = None
    pieces: int = 0
    ended: bool = False  # the client side got its final event (the tab may still be busy)

    def completion(self, finish: FinishReason) -> Completion:
        return Completion(
            text=self.text.text,
            finish_reason=finish,
            usage=Usage(self.prompt_tokens, self.pieces),
            timings=Timings.from_clock(
                self.handle.request.submitted_at,
                self.dispatched_at,
                self.first_token_at,
                self.last_token_at,
                time.perf_counter(),
            ),
            max_tokens_clamped=self.clamped,
        )


class BrowserHandle(GenerationHandle):
    """A handle whose cancel() also reaches the engine (an asyncio engine has no step loop)."""

    def __init__(
        self,
        request: GenerationRequest,
        loop: asyncio.AbstractEventLoop,
        on_cancel: Callable[[BrowserHandle], None],
    ) -> None:
        super().__init__(request, loop)
        self._on_cancel = on_cancel
        self.prompt = ""
        self.forwarded: GenerationHandle | None = None  # running on the fallback engine

    def cancel(self) -> None:
        if not self.cancelled:
            super().cancel()
            self._on_cancel(self)


def request_id(handle: GenerationHandle) -> str:
    return handle.request.request_id or f"h{id(handle):x}"


def wllama_options(handle: BrowserHandle) -> dict[str, Any]:
    """The wllama (llama.cpp server) completion options for a request's parameters."""
    p = handle.request.params
    payload: dict[str, Any] = {
        "prompt": handle.prompt,
        "max_tokens": p.max_tokens,
        "temperature": p.temperature,
        "top_k": p.top_k,
        "top_p": p.top_p,
        "frequency_penalty": p.frequency_penalty,
        "presence_penalty": p.presence_penalty,
        "stop": list(p.stop),
        "ignore_eos": p.ignore_eos,
        # The native engine's sampler chain: penalties, top-k, top-p, temperature.
        "samplers": ["penalties", "top_k", "top_p", "temperature"],
        "min_p": 0.0,
        "typical_p": 1.0,
        "repeat_penalty": p.repeat_penalty,
        "repeat_last_n": p.penalty_last_n,
    }
    if p.seed is not None:
        payload["seed"] = p.seed
    if p.grammar is not None:
        payload["grammar"] = p.grammar
    return payload


def tab_error(
    data: dict[str, Any], default: type[BrowserLLMError], fallback_message: str
) -> BrowserLLMError:
    code = data.get("code")
    message = data.get("message")
    text = message[:500] if isinstance(message, str) and message else fallback_message
    cls = _TAB_ERRORS.get(code, default) if isinstance(code, str) else default
    details = data.get("details")
    return cls(text, details if isinstance(details, dict) else None)


def no_vocabulary() -> UnsupportedError:
    # The tab protocol has no tokenize message yet (wllama could answer one).
    return UnsupportedError(
        "the browser engine cannot tokenize or detokenize yet; use the native engine "
        '("engine": "native")',
        {"field": "engine"},
    )
