"""The browser engine: llama.cpp (wllama, WebAssembly or WebGPU) running in a browser tab.

A tab opened at /engine attaches over a WebSocket. This class handles the
tab (attach, model load, loss) behind the same Engine protocol as the native
engine; engine/browser/relay.py sends the generations to it, one at a time. The
server keeps what makes behaviour identical: it renders the chat template
(read from the GGUF header), applies stop strings to the relayed text and
builds the Completion from its own clocks.

All methods run on the event loop; nothing here blocks or uses threads.
Several tabs: the newest attached tab wins; the previous one is told it was
replaced and its running request fails (see docs/browser-engine.md).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Coroutine, Sequence
from pathlib import Path
from typing import Any

from browser_llm.core.errors import (
    BrowserLLMError,
    CancelledError,
    InferenceError,
    ModelLoadFailedError,
    ModelNotLoadedError,
    ValidationError,
    WebGPUError,
)
from browser_llm.core.types import Embeddings, EmbedInput, GpuDevice, LoadedModel
from browser_llm.engine.base import (
    Engine,
    EngineState,
    EngineStats,
    Failed,
    GenerationHandle,
    GenerationRequest,
)
from browser_llm.engine.browser.heartbeat import TabHeartbeat
from browser_llm.engine.browser.loading import TabLoad, not_loaded_text
from browser_llm.engine.browser.model import (
    BROWSER_FILE_LIMIT_BYTES,
    WantedModel,
    chat_template,
    check_file_limit,
    check_quota,
    inspect_model,
    load_record,
    loaded_model,
    tab_prompt,
)
from browser_llm.engine.browser.relay import GENERATION_MESSAGES, TabRelay, forward
from browser_llm.engine.browser.tab import BrowserHandle, Tab, no_vocabulary, tab_error
from browser_llm.engine.chat_template import ChatTemplate

__all__ = ["BROWSER_FILE_LIMIT_BYTES", "BrowserEngine"]

logger = logging.getLogger(__name__)

_GB = 1024**3
BACKENDS = ("auto", "webgpu", "wasm")


class BrowserEngine:
    """Implements the Engine protocol by relaying to the attached tab."""

    def __init__(
        self,
        context_size: int,
        model_url: Callable[[str], str],
        fallback: Engine | None = None,
        file_limit_bytes: int = BROWSER_FILE_LIMIT_BYTES,
        backend: str = "auto",
        tab_timeout_s: float = 20.0,
    ) -> None:
        if backend not in BACKENDS:
            raise ValueError(f"backend must be one of {BACKENDS}")
        self._context_size = context_size
        self._model_url = model_url
        self._fallback = fallback
        self._file_limit = file_limit_bytes
        self._tab: Tab | None = None
        self._wanted: WantedModel | None = None
        self._model: LoadedModel | None = None
        self._template: ChatTemplate | None = None
        self._load = TabLoad()
        self._state: EngineState = "idle"
        self._backend = backend  # the tab's choice under this setting: docs/browser-engine.md
        self._relay = TabRelay(self._send, self._can_run, self._context_length)
        self._heartbeat = TabHeartbeat(tab_timeout_s, self._safe_send, self._on_silent)
        self.tabs_attached_total = 0
        self._tasks: set[asyncio.Task[Any]] = set()  # background sends and loads

    @property
    def load_progress(self) -> dict[str, Any] | None:
        return self._load.progress

    @property
    def last_load(self) -> dict[str, Any] | None:
        return self._load.last

    @property
    def load_error(self) -> BrowserLLMError | None:
        return self._load.error

    def _spawn(self, work: Coroutine[Any, Any, Any]) -> None:
        """Runs `work` in the background, holding a reference until it ends (the loop
        keeps only weak ones: an unreferenced task may be collected mid-flight)."""
        task = asyncio.get_running_loop().create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # ---- Engine protocol ---------------------------------------------------
    @property
    def state(self) -> EngineState:
        return self._state

    @property
    def model(self) -> LoadedModel | None:
        if self._model is None and self._tab is None and self._fallback is not None:
            return self._fallback.model  # requests will run on the fallback engine
        return self._model

    @property
    def gpu_offload_supported(self) -> bool:
        tab = self._tab
        return tab is not None and tab.readings.webgpu_available

    async def embed(self, texts: Sequence[EmbedInput]) -> Embeddings:
        raise ValidationError(
            "embeddings run on the native engine only (not in the browser tab yet)",
            {"field": "engine"},
        )

    @property
    def gpu_devices(self) -> tuple[GpuDevice, ...]:
        return ()  # the tab's GPU is WebGPU's, reported in its own readings

    @property
    def attached(self) -> bool:
        return self._tab is not None

    @property
    def tab(self) -> Tab | None:
        return self._tab

    @property
    def wanted_model_id(self) -> str | None:
        return self._wanted.model_id if self._wanted is not None else None

    def start(self) -> None:
        pass

    def shutdown(self) -> None:
        self._heartbeat.stop()
        self._relay.fail_all(CancelledError("server is shutting down"))

    def stats(self) -> EngineStats:
        tab_errors = self._tab.readings.memory_errors if self._tab is not None else 0
        return EngineStats(
            running=self._relay.running,
            tokens_generated_total=self._relay.tokens_total,
            memory_errors=self._relay.memory_errors + tab_errors,
        )

    def check_fits(self, model_id: str, size_bytes: int) -> None:
        """STORAGE_ERROR at once (before any load starts) for a model the tab cannot hold."""
        check_file_limit(model_id, size_bytes, self._file_limit)
        if self._tab is not None:
            check_quota(self._tab.readings, model_id, size_bytes)

    async def want(self, model_id: str, path: str) -> WantedModel:
        """Checks a model for the browser and remembers it: an attaching tab loads it."""
        wanted = await asyncio.to_thread(inspect_model, model_id, Path(path), self._file_limit)
        self._wanted = wanted
        return wanted

    async def load(self, model_id: str, path: str) -> LoadedModel:
        wanted = await self.want(model_id, path)
        tab = self._tab
        if tab is None:
            raise ModelLoadFailedError(
                "no browser tab is attached: open the /engine page of this server in a "
                "browser; it will load this model when it attaches",
                {"model_id": model_id, "reason": "no_browser_tab"},
            )
        check_quota(tab.readings, wanted.model_id, wanted.size_bytes)
        while self._relay.run is not None:  # model changes wait for the running generation
            await self._relay.idle.wait()
        return await self._send_load(tab, wanted)

    async def unload(self) -> None:
        self._wanted = None
        self._model = None
        self._template = None
        self._state = "idle"
        if self._tab is not None:
            await self._safe_send(self._tab, {"type": "unload"})

    def submit(self, request: GenerationRequest) -> GenerationHandle:
        handle = BrowserHandle(request, asyncio.get_running_loop(), self._cancel)
        if self._model is None and self._tab is None and self._fallback is not None:
            forward(self._fallback, handle)
            return handle
        if self._model is None:
            handle.post(Failed(ModelNotLoadedError(self.not_loaded_reason())))
            return handle
        if request.logprobs is not None or request.params.logit_bias:
            # The tab's wllama sends text only, no logits, and takes no biases.
            field = "logprobs" if request.logprobs is not None else "logit_bias"
            error = ValidationError(
                f"{field}: not available on the browser engine; use engine 'native'",
                {"field": field},
            )
            handle.post(Failed(error))
            return handle
        try:
            handle.prompt = tab_prompt(self._template, self._wanted, request)
        except BrowserLLMError as exc:
            handle.post(Failed(exc))
            return handle
        self._relay.enqueue(handle)
        return handle

    async def tokenize(self, text: str, add_special: bool, parse_special: bool) -> list[int]:
        if self._model is None and self._tab is None and self._fallback is not None:
            return await self._fallback.tokenize(text, add_special, parse_special)
        raise no_vocabulary()

    async def detokenize(
        self, tokens: list[int], remove_special: bool, unparse_special: bool
    ) -> str:
        if self._model is None and self._tab is None and self._fallback is not None:
            return await self._fallback.detokenize(tokens, remove_special, unparse_special)
        raise no_vocabulary()

    # ---- tabs --------------------------------------------------------------
    def attach(self, tab: Tab) -> Tab | None:
        """Makes `tab` the active one; returns the tab it replaced (newest wins)."""
        old = self._tab
        if old is not None:
            self._lose_tab(old, "the browser tab was replaced by a newer one")
        self._tab = tab
        self._heartbeat.watch(tab)
        self.tabs_attached_total += 1
        logger.info("browser tab %s attached", tab.id)
        wanted = self._wanted
        if wanted is not None:
            self._spawn(self._load_on_attach(tab, wanted))
        return old

    def detach(self, tab: Tab) -> None:
        if self._tab is tab:
            logger.warning("browser tab %s detached", tab.id)
            self._lose_tab(tab, "the browser tab running the engine closed or reloaded")

    def on_message(self, tab: Tab, message: dict[str, Any]) -> None:
        """A message from a tab (already parsed and size-checked)."""
        if tab is not self._tab:
            return  # a replaced tab's last words
        tab.last_seen = time.monotonic()
        kind = message.get("type")
        data = message.get("data")
        data = data if isinstance(data, dict) else {}
        if kind == "readings":
            tab.readings.update(data)
        elif kind == "load_progress":
            self._load.on_progress(data)
        elif kind == "loaded":
            self._on_loaded(tab, data)
        elif kind == "load_failed":
            self._on_load_failed(data)
        elif kind == "device_lost":
            self._on_device_lost(tab, data)
        elif kind in GENERATION_MESSAGES:
            self._relay.on_message(kind, message)

    # ---- loading -------------------------------------------------------------
    async def _load_on_attach(self, tab: Tab, wanted: WantedModel) -> None:
        await asyncio.sleep(0)  # let the attach route send its hello reply first
        try:
            check_quota(tab.readings, wanted.model_id, wanted.size_bytes)
            await self._send_load(tab, wanted)
        except BrowserLLMError as exc:
            logger.error("browser tab could not load %s: %s", wanted.model_id, exc.message)

    async def _send_load(self, tab: Tab, wanted: WantedModel) -> LoadedModel:
        url = self._model_url(wanted.model_id)
        message, future = self._load.begin(wanted, url, self._context_size, self._backend)
        self._model = None
        self._state = "loading"
        await self._safe_send(tab, message)
        return await future

    def _on_loaded(self, tab: Tab, data: dict[str, Any]) -> None:
        wanted = self._wanted
        if wanted is None or not self._load.pending or data.get("model_id") != wanted.model_id:
            return
        self._template = chat_template(wanted)
        self._model = loaded_model(wanted, data, self._context_size, self._template is not None)
        self._state = "ready"
        record = load_record(wanted, data, self._model)
        backend = record["backend"]
        self._load.succeed(self._model, record)
        logger.info(
            "browser tab %s loaded %s on %s",
            tab.id,
            wanted.model_id,
            backend or "an unknown backend",
        )
        self._relay.dispatch()

    def _on_load_failed(self, data: dict[str, Any]) -> None:
        self._state = "error"
        error = tab_error(data, ModelLoadFailedError, "the browser tab could not load the model")
        if error.code == "INFERENCE_ERROR":
            error = ModelLoadFailedError(error.message, error.details)
        self._load.fail(error)
        self._relay.fail_queued(error)  # they waited for a model that will not come

    # ---- generations ---------------------------------------------------------
    def not_loaded_reason(self) -> str:
        return not_loaded_text(self._tab is not None, self._state, self.load_error)

    def _can_run(self) -> bool:
        return self._tab is not None and self._model is not None

    def _context_length(self) -> int:
        model = self._model
        return model.context_length if model is not None else self._context_size

    def _send(self, message: dict[str, Any]) -> None:
        tab = self._tab
        if tab is not None:
            self._spawn(self._safe_send(tab, message))

    def _cancel(self, handle: BrowserHandle) -> None:
        if handle.forwarded is not None:
            handle.forwarded.cancel()
            return
        self._relay.cancel(handle)

    # ---- faults --------------------------------------------------------------
    def _on_device_lost(self, tab: Tab, data: dict[str, Any]) -> None:
        """The tab lost wllama's WebGPU device: fail the running request, reload the model."""
        message = data.get("message")
        why = message[:300] if isinstance(message, str) else "the WebGPU device was lost"
        fallback = data.get("fallback")
        logger.warning(
            "browser tab %s: %s; reloading the model%s",
            tab.id,
            why,
            f" on WebAssembly ({fallback})" if isinstance(fallback, str) else "",
        )
        self._model = None  # nothing is dispatched to the tab until it has the model again
        self._state = "loading"
        self._relay.fail_running(WebGPUError(why, {"reason": "webgpu_device_lost"}))
        wanted = self._wanted
        if wanted is not None:
            self._spawn(self._load_on_attach(tab, wanted))

    def _on_silent(self, tab: Tab, silent_s: float) -> None:
        if tab is not self._tab:
            return
        logger.warning("browser tab %s sent nothing for %.1f s: dropped", tab.id, silent_s)
        self._lose_tab(tab, f"the browser tab stopped answering (silent for {silent_s:.0f} s)")
        self._spawn(self._safe_send(tab, {"type": "timed_out"}))

    def _lose_tab(self, tab: Tab, why: str) -> None:
        self._heartbeat.stop()
        self._tab = None
        self._model = None
        self._template = None
        self._state = "idle"
        error = InferenceError(f"{why}; the request was stopped", {"reason": "browser_tab_lost"})
        self._load.fail(ModelLoadFailedError(f"{why} while loading the model"), sticky=False)
        run, queued = self._relay.take_all()
        if run is not None:
            if self._fallback is not None and run.pieces == 0:
                forward(self._fallback, run.handle)  # nothing was streamed yet: run it elsewhere
            else:
                self._relay.end_client(run, "stop", error)
        for handle in queued:
            if self._fallback is not None:
                forward(self._fallback, handle)
            else:
                handle.post(Failed(error))

    async def _safe_send(self, tab: Tab, message: dict[str, Any]) -> None:
        try:
            await tab.send(message)
        except Exception as exc:  # the socket is going away; detach() will follow
            logger.debug("send to browser tab %s failed: %s", tab.id, exc)
            if tab is self._tab:
                self._lose_tab(tab, "the browser tab stopped answering")
