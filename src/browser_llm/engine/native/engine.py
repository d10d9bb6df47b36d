"""The llama.cpp engine: one long-lived thread owns the model and context.

The event loop never calls llama.cpp. It puts commands on an inbox; the
engine thread runs them in arrival order and steps the running sequences.
Each step decodes one token per decoding sequence plus chunks of prompts still
being read (engine/native/batch_plan.py says which, in at most two llama_decode calls).
"""

from __future__ import annotations

import bisect
import logging
import queue
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Any

import llama_cpp

from browser_llm.core.errors import (
    BrowserLLMError,
    CancelledError,
    InferenceError,
    InternalError,
    ModelNotLoadedError,
)
from browser_llm.core.types import FinishReason, GpuDevice, LoadedModel
from browser_llm.engine.base import (
    Admitted,
    EngineState,
    EngineStats,
    Event,
    Failed,
    Finished,
    GenerationHandle,
    Started,
    TokenText,
    post_all,
)
from browser_llm.engine.config import ContextConfig
from browser_llm.engine.native.admission import admit
from browser_llm.engine.native.batch_plan import fill, plan_step
from browser_llm.engine.native.commands import Embed, Load, Stop, Submit, Unload, VocabOp
from browser_llm.engine.native.cpu.governor import ThreadGovernor
from browser_llm.engine.native.cpu.pacer import CpuPacer
from browser_llm.engine.native.embedder import EmbedQueue
from browser_llm.engine.native.ggml.devices import gpu_devices
from browser_llm.engine.native.inbox import CommandInbox
from browser_llm.engine.native.kv.placement import KVPlacement
from browser_llm.engine.native.kv.prompt_cache import PromptCache
from browser_llm.engine.native.logprobs import LogprobTrail
from browser_llm.engine.native.model import LlamaModel, install_log_bridge
from browser_llm.engine.native.sampling import sampler_for
from browser_llm.engine.native.sequence import Sequence
from browser_llm.engine.native.speculator import Speculator, exact_cell_limit
from browser_llm.engine.native.token_output import TokenOutput
from browser_llm.engine.native.vocab_ops import run_vocab_op
from browser_llm.engine.prompt import PreparedPrompt
from browser_llm.engine.text_stream import TextStream
from browser_llm.grammar.closing import ClosingCatalog

__all__ = ["LlamaEngine"]

logger = logging.getLogger(__name__)

# Prompt tokens per step while other sequences are decoding (chunked prefill).
_PREFILL_CHUNK_WHILE_DECODING = 128


class LlamaEngine(CommandInbox):
    """Implements the Engine protocol on llama-cpp-python's low-level API."""

    def __init__(
        self,
        config: ContextConfig,
        deliver: Callable[[list[tuple[GenerationHandle, Event]]], None] = post_all,
        governor: ThreadGovernor | None = None,
    ) -> None:
        self._config = config
        self._pacer = CpuPacer(
            governor or ThreadGovernor(config.threads, adaptive=config.adaptive_threads)
        )
        self._deliver = deliver  # each step's events (the engine process: to its socket)
        super().__init__()
        self._thread = threading.Thread(target=self._run, name="llama-engine", daemon=True)
        # Engine-thread state: requests and model operations in arrival order.
        self._backlog: deque[Load | Unload | GenerationHandle] = deque()
        self._prepared: dict[int, PreparedPrompt] = {}
        self._running: list[Sequence] = []
        self._kv = KVPlacement(config.max_sequences, config.prefix_cache)
        self._disk = PromptCache(config)  # long prompts' cells, kept across restarts
        self._outbox: list[tuple[GenerationHandle, Event]] = []
        self._embeds = EmbedQueue()
        self._model: LlamaModel | None = None
        self._closings: ClosingCatalog | None = None  # the model's grammar walkers
        self._state: EngineState = "idle"
        self._output = TokenOutput(self._emit, self._end)  # sampled tokens -> events
        self._speculator = Speculator(config.speculation, config.batch_size, exact_cell_limit())
        self._memory_errors = 0
        self._gpu_devices: tuple[GpuDevice, ...] | None = None

    # ---- event-loop side -------------------------------------------------
    @property
    def state(self) -> EngineState:
        return self._state

    @property
    def model(self) -> LoadedModel | None:
        model = self._model
        return model.info if model is not None else None

    @property
    def gpu_offload_supported(self) -> bool:
        return bool(llama_cpp.llama_supports_gpu_offload())

    def not_loaded_reason(self) -> str | None:
        return None

    def check_fits(self, model_id: str, size_bytes: int) -> None:
        return None  # llama.cpp checks memory when it loads

    @property
    def gpu_devices(self) -> tuple[GpuDevice, ...]:
        if self._gpu_devices is None:
            self._gpu_devices = gpu_devices()
        return self._gpu_devices

    def start(self) -> None:
        if not self._thread.is_alive():
            self._thread.start()

    def shutdown(self) -> None:
        if self._thread.is_alive():
            self._inbox.put(Stop())
            self._thread.join(timeout=30)

    def stats(self) -> EngineStats:
        return EngineStats(
            running=len(self._running),
            tokens_generated_total=self._output.tokens_total,
            memory_errors=self._memory_errors,
            slot_moves=self._kv.moves,
            **(self._pacer.readings() | self._disk.readings() | self._speculator.readings()),  # type: ignore[arg-type]
        )

    # ---- engine thread -----------------------------------------------------
    def _run(self) -> None:
        install_log_bridge()
        while True:
            idle = not self._running and not self._backlog and not self._embeds.pending
            if not self._drain_inbox(block=idle):
                break
            try:
                self._admit()
                # One text between two decode steps, within its share of the time.
                self._embeds.run_one(self._model, busy=bool(self._running))
                # Started goes out before the decode: if the engine process dies in it, the
                # request is known as running (failed), not queued (run again).
                self._flush_outbox()
                self._pacer.between_steps(self._model)
                if self._running:
                    self._step()
            except Exception:  # keep the engine alive; fail what was running
                logger.exception("engine step failed")
                self._fail_running(InternalError("engine failure (details in /debug/logs)"))
                self._kv.drop_caches(self._model)
            self._flush_outbox()
        self._fail_running(CancelledError("server is shutting down"))
        self._embeds.fail_all(CancelledError("server is shutting down"))
        for item in self._backlog:
            if isinstance(item, GenerationHandle):
                self._emit(item, Failed(CancelledError("server is shutting down")))
        self._flush_outbox()
        self._disk.close()
        if self._model is not None:
            self._model.free()

    def _emit(self, handle: GenerationHandle, event: Event) -> None:
        self._outbox.append((handle, event))

    def _flush_outbox(self) -> None:
        if self._outbox:
            self._deliver(self._outbox)
            self._outbox = []

    def _drain_inbox(self, block: bool) -> bool:
        """Moves commands to the backlog; returns False on stop."""
        try:
            wait = self._pacer.idle_wait_s  # idle, it still wakes to read the CPU load
            command = self._inbox.get(timeout=wait) if block else self._inbox.get_nowait()
        except queue.Empty:
            return True
        while True:
            if isinstance(command, Stop):
                return False
            if isinstance(command, Submit):
                self._accept(command.handle)
            elif isinstance(command, Embed):
                self._embeds.add(command.texts, command.done)
            elif isinstance(command, VocabOp):
                run_vocab_op(command, self._model)
            else:
                self._backlog.append(command)
            try:
                command = self._inbox.get_nowait()
            except queue.Empty:
                return True

    def _accept(self, handle: GenerationHandle) -> None:
        # Tokenize now when the current model will run it, so a bad prompt is
        # answered at once instead of after the queue wait.
        model_op_pending = any(isinstance(item, Load | Unload) for item in self._backlog)
        if not model_op_pending and not self._prepare(handle):
            return
        self._backlog.append(handle)

    def _prepare(self, handle: GenerationHandle) -> bool:
        if id(handle) in self._prepared:
            return True
        if self._model is None:
            self._emit(handle, Failed(ModelNotLoadedError("no model is loaded; load one first")))
            return False
        try:
            prepared = admit(self._model, self._closings, handle.request)
        except BrowserLLMError as exc:
            self._emit(handle, Failed(exc))
            return False
        except Exception:  # never let one request's prompt end the engine thread
            logger.exception("preparing a prompt failed")
            self._emit(handle, Failed(InternalError("could not prepare the prompt")))
            return False
        self._prepared[id(handle)] = prepared
        model_id = self._model.info.model_id
        admitted = Admitted(len(prepared.tokens), prepared.max_tokens, prepared.clamped, model_id)
        self._emit(handle, admitted)
        return True

    def _admit(self) -> None:
        while self._backlog:
            item = self._backlog[0]
            if isinstance(item, GenerationHandle):
                if item.cancelled:
                    self._backlog.popleft()
                    self._prepared.pop(id(item), None)
                    self._emit(item, Failed(CancelledError("cancelled while queued")))
                    continue
                if not self._kv.any_free:
                    return
                self._backlog.popleft()
                if self._prepare(item):
                    self._start_sequence(item, self._prepared.pop(id(item)))
            else:
                if self._running:
                    return  # model operations wait for running sequences to end
                self._backlog.popleft()
                self._run_model_op(item)

    def _start_sequence(self, handle: GenerationHandle, prompt: PreparedPrompt) -> None:
        assert self._model is not None
        params = handle.request.params
        try:
            sampler = sampler_for(params, self._model, self._config.json_repeat_limit)
        except (MemoryError, ValueError) as exc:
            self._memory_errors += 1
            self._emit(handle, Failed(InferenceError(str(exc))))
            return
        seq_id, reused = self._disk.claim(self._model, self._kv, prompt.tokens)
        seq = Sequence(handle, seq_id, prompt, sampler, TextStream(params.stop), reused=reused)
        if params.grammar is not None and self._closings is not None:
            seq.budget = self._closings.budget(params.grammar)
        if handle.request.logprobs is not None:
            seq.trail = LogprobTrail(handle.request.logprobs, self._model)
        self._speculator.start(seq)
        # Sorted by seq id: llama.cpp packs only runs of consecutive ids into one
        # micro-batch, so order and compact ids decide how many graphs a step runs.
        bisect.insort(self._running, seq, key=lambda s: s.seq_id)
        self._emit(handle, Started(seq.admitted_at - handle.request.submitted_at))

    def _run_model_op(self, op: Load | Unload) -> None:
        self._kv.drop_caches(None)  # the cells go with the context
        previous = self._model.info if self._model is not None else None
        if self._model is not None:
            self._model.free()
            self._model = None
        self._closings = None
        self._state = "idle"
        if isinstance(op, Unload):
            op.done.set_result(None)
            return
        self._state = "loading"
        try:
            self._model = self._open_model(op.model_id, op.path)
        except BaseException as exc:
            self._state = "error"
            self._restore(previous)
            op.done.set_exception(exc)
            return
        self._state = "ready"
        op.done.set_result(self._model.info)

    def _restore(self, previous: LoadedModel | None) -> None:
        """After a failed load, the model that was serving comes back (same file)."""
        if previous is None:
            return
        try:
            self._model = self._open_model(previous.model_id, previous.path)
            self._state = "ready"
        except BaseException:
            logger.exception("could not restore model %s after a failed load", previous.model_id)

    def _open_model(self, model_id: str, path: str) -> LlamaModel:
        """Loads and self-checks a model (engine/native/faults.py overrides this in tests only)."""
        model = LlamaModel(model_id, path, self._config)
        try:
            self._pacer.attach(model)
            model.self_check()
        except BaseException:
            model.free()
            raise
        self._closings = ClosingCatalog(model)
        self._disk.open(model)
        return model

    def _step(self) -> None:
        model = self._model
        assert model is not None
        started = time.perf_counter()
        for seq in [s for s in self._running if s.handle.cancelled]:
            self._end(seq, error=CancelledError("cancelled by the client"))
        if not self._running:
            return
        self._kv.compact(model, self._running)
        drafted_at = time.perf_counter()
        self._speculator.draft(self._running, self._pacer.governor.threads)
        chunk = _PREFILL_CHUNK_WHILE_DECODING
        alone = chunk if self._pacer.reduced else None
        plan = plan_step(self._running, self._config.batch_size, chunk, alone)
        n, outputs = fill(model.batch, plan.decoding, plan.short)
        if n and not self._decode(model, n, outputs):
            return
        if plan.long is None and not plan.short:  # only such steps time the rows' cost
            self._speculator.step_took(time.perf_counter() - drafted_at)
        if plan.long is not None and plan.long.seq in self._running:
            n, outputs = fill(model.batch, [], [plan.long])
            self._decode(model, n, outputs)
        self._pacer.step_took(time.perf_counter() - started)

    def _decode(self, model: LlamaModel, n: int, outputs: list[tuple[Sequence, int]]) -> bool:
        """Runs one llama_decode over the batch's first n tokens and samples outputs."""
        model.batch.n_tokens = n
        rc = self._pacer.decode(model, lambda: self._llama_decode(model.ctx, model.batch))
        model.copies_done()
        if rc != 0:
            if rc == 1:
                self._memory_errors += 1
            self._fail_running(InferenceError(f"llama_decode failed (code {rc})"))
            self._kv.drop_caches(self._model)
            return False
        self._disk.prefilled(model, outputs)
        for seq, index in outputs:
            if seq.lookup is not None:
                self._speculator.verify(model, self._output, seq, index)
            elif seq.budget is None:
                self._output.on_token(model, seq, seq.sampler.sample(model.ctx, index), index)
            else:  # the token is recorded once the closing after it is known to fit
                self._output.on_token(model, seq, seq.sampler.choose(model.ctx, index), index)
        return True

    def _llama_decode(self, ctx: Any, batch: Any) -> int:
        """The one llama_decode call site; engine/native/faults.py overrides it in tests only."""
        return int(llama_cpp.llama_decode(ctx, batch))

    def _end(
        self,
        seq: Sequence,
        finish_reason: FinishReason = "stop",
        error: BrowserLLMError | None = None,
    ) -> None:
        self._running.remove(seq)
        seq.sampler.free()
        # A cancelled sequence's cells are whole (cancels land between steps).
        keep = error is None or isinstance(error, CancelledError)
        self._kv.release(self._model, seq, keep_cells=keep)
        if error is not None:
            self._emit(seq.handle, Failed(error))
            return
        tail = seq.text.flush()  # tokens inside a stop string get no logprobs entry
        held = seq.trail.release_all() if seq.trail is not None and not seq.text.stopped else ()
        if tail or held:
            self._emit(seq.handle, TokenText(tail, held))
        self._emit(seq.handle, Finished(seq.completion(finish_reason)))

    def _fail_running(self, error: BrowserLLMError) -> None:
        for seq in list(self._running):
            self._end(seq, error=error)
