"""The Engine protocol, served by the cluster's replicas through a Serve deployment handle.

The ingress runs the unchanged FastAPI app (routes, SSE, WebSocket, limits, stats) on this
engine. Each request streams from one replica (replica.py) as wire-encoded events.

Failure semantics (docs/cluster.md):
- the replica (or its engine process) dies before any token reached the client: the
  request runs again, once, on another replica (the router is told to avoid the first).
  A non-streaming request (`buffered`) has its tokens held until it finishes, so for it
  that is any time before the end;
- it dies after a token reached the client: the stream ends with INFERENCE_ERROR
  (reason "replica_died"), never silently; a second death gives a non-streaming request
  the same error as a 500.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ray.serve import context as serve_context
from ray.serve._private.utils import generate_request_id
from ray.serve.handle import DeploymentHandle

from browser_llm.cluster.reports import ReplicaReports
from browser_llm.core.errors import (
    BrowserLLMError,
    CancelledError,
    InferenceError,
    ModelLoadFailedError,
    ValidationError,
)
from browser_llm.core.types import Embeddings, EmbedInput, GpuDevice, LoadedModel
from browser_llm.engine.base import (
    Admitted,
    EngineState,
    EngineStats,
    Failed,
    Finished,
    GenerationHandle,
    GenerationRequest,
    Started,
    TokenText,
    summed_counters,
)
from browser_llm.engine.chat_template import ChatTemplate
from browser_llm.engine.process.wire import decode_error, decode_event, decode_model, encode_request
from browser_llm.engine.prompt import prompt_text
from browser_llm.models.gguf import InvalidGGUFError
from browser_llm.models.gguf_info import read_gguf_header

__all__ = ["RemoteEngine", "RemoteHandle"]

logger = logging.getLogger(__name__)

_REFRESH_S = 1.0
_ASK_TIMEOUT_S = 10.0
_RENDERED_CHARS = 4096  # of the rendered prompt sent for routing (the router keys on fewer)


class ReplicaLostError(Exception):
    """The replica serving a request went away (its stream broke or ended early)."""


class RemoteHandle(GenerationHandle):
    """A request's handle whose cancel also stops the forwarding task (and so the replica's
    generator, which cancels the sequence in its engine)."""

    task: asyncio.Task[None] | None = None

    def cancel(self) -> None:
        super().cancel()
        if self.task is not None:
            self.task.cancel()


def _engine_died(error: BrowserLLMError) -> bool:
    details = error.details or {}
    return isinstance(error, InferenceError) and details.get("reason") == "engine_died"


class RemoteEngine:
    """Implements the Engine protocol by forwarding to the engine deployment's replicas."""

    def __init__(self, handle: DeploymentHandle, reports: ReplicaReports | None = None) -> None:
        self._handle = handle
        self._reports = reports
        self._replicas: list[dict[str, Any]] = []
        self._model: LoadedModel | None = None
        # The served model's chat template, read from its file on this node (every node
        # has the model files): the router keys on the prompt as the replica will render it.
        self._template: tuple[str, ChatTemplate | None] | None = None
        self._refresher: asyncio.Task[None] | None = None
        self.retried = 0  # requests run again after their replica died before a token
        self.lost_mid_stream = 0  # requests ended by a replica's death after a token

    # ---- what the replicas report -------------------------------------------------
    async def refresh(self) -> None:
        """Reads every replica's report (Redis); without Redis, or before any replica has
        published, asks one replica through the handle."""
        reports = await self._reports.read_all() if self._reports is not None else []
        if not reports:
            reports = [await asyncio.wait_for(self._handle.info.remote(), _ASK_TIMEOUT_S)]
        self._replicas = reports
        for report in reports:
            if report.get("state") == "ready" and report.get("model"):
                self._model = decode_model(report["model"])
                break
        model = self._model
        if model is not None and (self._template is None or self._template[0] != model.path):
            self._template = (model.path, await asyncio.to_thread(_template_of, model.path))

    def _rendered(self, request: GenerationRequest) -> str | None:
        """The start of the prompt as the model's template renders it; None when this
        node cannot read the template (the router then keys on the raw text)."""
        template = self._template[1] if self._template is not None else None
        if template is None:
            return None
        try:
            return prompt_text(template, request)[0][:_RENDERED_CHARS]
        except BrowserLLMError:
            return None  # the replica will refuse it with the same error

    async def _refresh_forever(self) -> None:
        while True:
            await asyncio.sleep(_REFRESH_S)
            try:
                await self.refresh()
            except Exception as exc:  # keep the last view; /status says when it was read
                logger.warning("could not read the replicas' reports: %s", exc)

    @property
    def replicas(self) -> list[dict[str, Any]]:
        return list(self._replicas)

    # ---- Engine protocol ------------------------------------------------------------
    @property
    def state(self) -> EngineState:
        states = {r.get("state") for r in self._replicas}
        if "ready" in states:
            return "ready"
        if "loading" in states or not states:
            return "loading"
        return "error" if "error" in states else "idle"

    @property
    def model(self) -> LoadedModel | None:
        return self._model

    @property
    def gpu_offload_supported(self) -> bool:
        return False

    @property
    def gpu_devices(self) -> tuple[GpuDevice, ...]:
        return ()

    def not_loaded_reason(self) -> str | None:
        if self._model is None:
            return "no cluster replica has reported a loaded model yet; retry shortly"
        return None

    def check_fits(self, model_id: str, size_bytes: int) -> None:
        return None

    def start(self) -> None:
        if self._refresher is None:
            self._refresher = asyncio.get_running_loop().create_task(self._refresh_forever())

    def shutdown(self) -> None:
        if self._refresher is not None:
            self._refresher.cancel()

    async def load(self, model_id: str, path: str) -> LoadedModel:
        model = self._model
        if model is not None and model.model_id == model_id:
            return model
        serving = model.model_id if model is not None else "no model yet"
        raise ModelLoadFailedError(
            f"the cluster's replicas serve {serving}; each replica loads the model named in "
            "the Serve config (docs/cluster.md): change it there and redeploy",
            {"model_id": model_id, "reason": "cluster_model_fixed"},
        )

    async def unload(self) -> None:
        raise ValidationError(
            "models cannot be unloaded through a cluster ingress; scale the engine deployment"
        )

    async def tokenize(self, text: str, add_special: bool, parse_special: bool) -> list[int]:
        result = await self._call("tokenize", text, add_special, parse_special)
        return [int(t) for t in result]

    async def detokenize(
        self, tokens: list[int], remove_special: bool, unparse_special: bool
    ) -> str:
        return str(await self._call("detokenize", tokens, remove_special, unparse_special))

    async def embed(self, texts: Sequence[EmbedInput]) -> Embeddings:
        result = await self._call("embed", texts)
        return Embeddings(
            model_id=str(result["model_id"]),
            vectors=[[float(x) for x in vector] for vector in result["vectors"]],
            prompt_tokens=int(result["prompt_tokens"]),
        )

    async def _call(self, method: str, *args: Any) -> Any:
        """A model operation on any replica (they all serve the same model)."""
        try:
            reply = await getattr(self._handle, method).remote(*args)
        except Exception as exc:  # the replica died or is unavailable
            raise InferenceError(
                f"the cluster replica died during {method} ({_describe(exc)})",
                {"reason": "replica_died"},
            ) from exc
        if "error" in reply:
            raise decode_error(reply["error"])
        return reply["ok"]

    def submit(self, request: GenerationRequest) -> GenerationHandle:
        loop = asyncio.get_running_loop()
        handle = RemoteHandle(request, loop)
        handle.task = loop.create_task(self._forward(handle))
        return handle

    def stats(self) -> EngineStats:
        totals = [
            EngineStats(**{**r["stats"], "details": {}}) for r in self._replicas if r.get("stats")
        ]
        steps = [s.step_ms for s in totals if s.step_ms]
        replicas = EngineStats(
            0,
            0,
            0,
            threads=sum(s.threads for s in totals),
            threads_max=sum(s.threads_max for s in totals),
            foreign_load=max((s.foreign_load for s in totals), default=0.0),
            step_ms=round(sum(steps) / len(steps), 3) if steps else 0.0,
            details={"cluster": self._cluster_block()},
        )
        return summed_counters(replicas, totals)

    def _cluster_block(self) -> dict[str, object]:
        """/status engine.process in a cluster: one entry per replica report."""
        replicas = [
            {
                "replica": r.get("replica"),
                "pid": r.get("pid"),
                "engine_pid": r.get("engine_pid"),
                "state": r.get("state"),
                "slots": r.get("slots"),
                "free_slots": r.get("free_slots"),
                "streams": r.get("streams"),
                "requests": r.get("requests"),
                "running": (r.get("stats") or {}).get("running"),
                "tokens_generated_total": (r.get("stats") or {}).get("tokens_generated_total"),
                "restarts": (r.get("stats") or {}).get("restarts"),
                "wedged_restarts": ((r.get("stats") or {}).get("process") or {}).get(
                    "wedged_restarts"
                ),
                "prefixes": r.get("prefixes", []),
                "reported_at": r.get("reported_at"),
            }
            for r in self._replicas
        ]
        return {
            "replicas": replicas,
            "retried_requests": self.retried,
            "lost_mid_stream": self.lost_mid_stream,
        }

    # ---- forwarding ---------------------------------------------------------------
    async def _forward(self, handle: RemoteHandle) -> None:
        encoded = encode_request(handle.request)
        rendered = self._rendered(handle.request)
        posted: set[type] = set()  # Admitted/Started already passed on (not twice on a retry)
        avoid: list[str] = []
        for attempt in (1, 2):
            state = _Attempt()
            _own_serve_request(handle.request.request_id)
            stream = self._handle.options(stream=True).generate.remote(
                encoded, avoid=avoid, rendered=rendered
            )
            try:
                await self._relay(stream, handle, state, posted, retry_allowed=attempt == 1)
                return
            except asyncio.CancelledError:
                stream.cancel()
                handle.post(Failed(CancelledError("cancelled")))
                return
            except Exception as exc:  # a dead actor, an unavailable replica, a broken stream
                if state.token_seen or attempt == 2 or handle.cancelled:
                    self._fail_lost(handle, state, exc)
                    return
                self.retried += 1
                avoid = [state.replica] if state.replica else []
                logger.warning(
                    "request %s: replica %s failed before its client saw a token (%s); retrying",
                    handle.request.request_id,
                    state.replica or "?",
                    _describe(exc),
                )

    async def _relay(
        self,
        stream: Any,
        handle: RemoteHandle,
        state: _Attempt,
        posted: set[type],
        retry_allowed: bool,
    ) -> None:
        ended = False
        # Read to the stream's end, not just to the terminal event: an abandoned stream
        # would keep the replica's generator (and Serve's count of its requests) open.
        async for item in stream:
            if item[0] == "R":
                state.replica = str(item[1])
                continue
            event = decode_event(item)
            if (
                isinstance(event, Failed)
                and _engine_died(event.error)
                and retry_allowed
                and not state.token_seen
            ):  # its engine process died before a token: run it elsewhere
                raise ReplicaLostError(event.error.message)
            if isinstance(event, Admitted | Started):
                if type(event) in posted:
                    continue
                posted.add(type(event))
            if isinstance(event, TokenText) and handle.request.buffered:
                state.held.append(event)  # its client sees nothing until Finished
                continue
            if isinstance(event, TokenText):
                state.token_seen = True
            if not ended:
                if isinstance(event, Finished):
                    for held in state.held:
                        handle.post(held)
                handle.post(event)
            ended = ended or isinstance(event, Finished | Failed)
        if not ended:
            raise ReplicaLostError("the replica's stream ended without a result")

    def _fail_lost(self, handle: RemoteHandle, state: _Attempt, exc: BaseException) -> None:
        if state.token_seen:
            self.lost_mid_stream += 1
        message = f"the cluster replica serving this request died ({_describe(exc)})" + (
            " after streaming began" if state.token_seen else ""
        )
        logger.error("request %s: %s", handle.request.request_id, message)
        handle.post(
            Failed(InferenceError(message, {"reason": "replica_died", "replica": state.replica}))
        )


def _own_serve_request(request_id: str | None) -> None:
    """Gives this task's next handle call a request id of its own. Calls made while one
    HTTP request is served inherit its ids from Serve's request context, and Serve's
    router matches replicas to waiting calls by that id: the generations of one WebSocket
    (one request for the proxy) overwrote each other there, and only one got a replica.
    The context is a contextvar of this task (each submit runs in its own task), so the
    WebSocket session's own context is untouched. Private Serve API: Ray is pinned."""
    serve_context._set_request_context(
        request_id=request_id or generate_request_id(),
        _internal_request_id=generate_request_id(),
    )


@dataclasses.dataclass
class _Attempt:
    replica: str | None = None
    token_seen: bool = False  # a token was passed on to the client: no retry any more
    held: list[TokenText] = dataclasses.field(default_factory=list)  # buffered requests


def _describe(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0][:200]}" if text else type(exc).__name__


def _template_of(path: str) -> ChatTemplate | None:
    try:
        header = read_gguf_header(Path(path))
        if not header.chat_template:
            return None
        return ChatTemplate(header.chat_template, header.bos_text, header.eos_text)
    except (OSError, InvalidGGUFError) as exc:
        logger.info("routing on raw prompt text: cannot read the template of %s (%s)", path, exc)
        return None
