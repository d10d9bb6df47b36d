"""GET /status's response: the spec's StatusResponse and this server's extension blocks
(docs/api.md gives each field's source)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

__all__ = ["StatusBrowser", "StatusResponse"]


class StatusModel(BaseModel):
    id: str
    loaded: bool


class StatusLoadedModel(BaseModel):
    """Extension: one resident model (BROWSER_LLM_MAX_LOADED_MODELS may allow several)."""

    id: str
    busy: bool = Field(description="Requests for it are queued or running")
    last_used: str | None = Field(description="ISO time of its last request or load")
    keep_alive_s: float = Field(description="Idle time before it unloads; negative: never")
    expires_at: str | None = Field(description="ISO time it unloads at if idle; null: never")
    size_bytes: int
    context_length: int
    pid: int | None = Field(description="Its engine process (null in process)")


class StatusGpuDevice(BaseModel):
    """Extension: a GPU llama.cpp can offload to (ggml's backend device registry)."""

    name: str
    description: str
    kind: Literal["gpu", "igpu"] = Field(description="igpu: integrated, uses host memory")
    memory_total_bytes: int
    memory_free_bytes: int = Field(description="When the engine process started")
    memory_total_gb: float
    memory_free_gb: float


class StatusGpuOffload(BaseModel):
    """Extension: the native engine's GPU offload."""

    supported: bool = Field(description="This llama.cpp build can offload layers to a GPU")
    devices: list[StatusGpuDevice]


class StatusSystem(BaseModel):
    webgpu_available: bool = Field(
        description="The engine in use runs on a WebGPU device: false on the native engine; "
        "with BROWSER_LLM_ENGINE=browser, the tab's reading"
    )
    ram_gb: float
    gpu_vram_gb: float | None = Field(
        description="Dedicated memory of the GPUs in use (0 with none); null where no "
        "source exists (see docs/api.md)"
    )
    storage_quota_gb: float
    storage_used_gb: float
    gpu_offload: StatusGpuOffload | None = Field(
        None, description="Extension: native GPU offload (build support and devices)"
    )


class StatusPerformance(BaseModel):
    avg_tokens_per_second: float
    avg_latency_ms: float
    requests_total: int
    requests_success: int
    requests_error: int


class StatusHealth(BaseModel):
    webgpu_context_losses: int
    memory_errors: int
    stability_score: float


class StatusEngineProcess(BaseModel):
    """Extension: the child process that runs llama.cpp."""

    pid: int | None = Field(description="Its process id; null while it is (re)started")
    state: Literal["starting", "running", "restarting", "failed", "stopped"]
    restarts: int = Field(description="Times it died and was started again")
    wedged_restarts: int = Field(
        0, description="Of those, killed by the server: wedged (work owed, no progress)"
    )
    last_exit: str | None = Field(description="How the last one ended, e.g. 'SIGSEGV: ...'")
    failure: str | None = Field(description="Why the model was marked failed (crash loop)")


class StatusClusterReplica(BaseModel):
    """Extension: one engine replica of a Ray Serve cluster, as it last reported."""

    replica: str = Field(description="Serve's replica id")
    pid: int | None = Field(description="The replica's process id (on its node)")
    engine_pid: int | None = Field(description="Its engine process's id (on its node)")
    state: str = Field(description="Its engine's state: idle, loading, ready or error")
    slots: int | None = Field(description="Sequence slots")
    free_slots: int | None
    streams: int | None = Field(description="Requests it has accepted and not yet ended")
    requests: int | None = Field(description="Requests it has accepted since it started")
    running: int | None
    tokens_generated_total: int | None
    restarts: int | None = Field(description="Its engine process's restarts")
    wedged_restarts: int | None = Field(
        None, description="Of those, wedged engine processes killed (then its health check fails)"
    )
    prefixes: list[str] = Field(description="Digests of the prompt prefixes it served lately")
    reported_at: float | None = Field(description="Unix time of the report")


class StatusCluster(BaseModel):
    """Extension: the replicas behind a cluster ingress (docs/cluster.md)."""

    replicas: list[StatusClusterReplica]
    retried_requests: int = Field(description="Run again after a replica died before a token")
    lost_mid_stream: int = Field(description="Ended by INFERENCE_ERROR: replica died mid-stream")


class StatusPromptCache(BaseModel):
    """The prompt cache on disk (KV state of long prompt prefixes)."""

    bytes: int = Field(0, description="Disk its files take (the loaded models' and others')")
    entries: int = Field(0, description="Saved prompts")
    lookups: int = Field(0, description="Long prompts looked up since the engine started")
    hits: int = Field(0, description="Lookups that loaded a saved prefix")
    hit_rate: float = Field(0.0, description="hits / lookups")


class StatusSpeculation(BaseModel):
    """Extension: speculative decoding's counters since the server started."""

    draft_tokens: int = Field(0, description="Draft tokens verified")
    accepted: int = Field(0, description="Of those, the ones the model confirmed (given out)")
    acceptance_rate: float = Field(0.0, description="accepted / draft_tokens")


class StatusEngine(BaseModel):
    """Extension: what the engine is doing right now."""

    queued: int = Field(description="Requests waiting for a sequence slot")
    running: int = Field(description="Sequences being decoded")
    parallel: int = Field(description="Sequence slots")
    max_queue: int = Field(description="Waiting requests allowed before 503 OVERLOADED")
    avg_queue_wait_ms: float
    max_queue_wait_ms: float
    tokens_generated_total: int
    context_length: int | None
    requests_cancelled: int
    requests_rejected: int = Field(description="Turned away with OVERLOADED")
    slot_moves: int = Field(
        0, description="KV cells copied between slots to keep running sequences adjacent"
    )
    draining: bool = Field(
        False, description="Shutting down: new generations get 503, running ones finish"
    )
    restarts: int = Field(0, description="Engine processes restarted after one died")
    threads: int = Field(0, description="llama.cpp threads in use now")
    threads_max: int = Field(0, description="llama.cpp threads configured")
    foreign_load: float = Field(
        0.0, description="Cores other processes used over the last 0.25 s (contention)"
    )
    degraded: bool = Field(
        False, description="Running on fewer threads than configured: other processes hold cores"
    )
    step_ms: float = Field(0.0, description="Moving average of a decode step's wall time")
    prompt_cache: StatusPromptCache = Field(
        default_factory=StatusPromptCache, description="The prompt cache on disk"
    )
    speculation: StatusSpeculation = Field(
        default_factory=StatusSpeculation,
        description="Speculative decoding (drafts looked up in the prompt and output)",
    )
    process: StatusEngineProcess | None = Field(
        None, description="The engine process (absent when llama.cpp runs in the server)"
    )
    cluster: StatusCluster | None = Field(
        None, description="The cluster's replicas (only behind a Ray Serve cluster ingress)"
    )


class StatusLoading(BaseModel):
    """Extension: the model load in progress."""

    model_id: str
    phase: str
    progress: float
    estimated_time_ms: float


class StatusLoadError(BaseModel):
    """Extension: a failed load."""

    model_id: str
    code: str
    message: str
    details: Any | None = None


class StatusBrowser(BaseModel):
    """Extension: the browser engine (a tab attached at /api/v1/engine/attach)."""

    attached: bool = Field(description="A tab is attached")
    state: Literal["ready", "loading", "error", "idle"]
    model: str | None = Field(description="Model loaded in the tab")
    wanted_model: str | None = Field(description="Model the tab is told to load when attaching")
    load_progress: dict[str, Any] | None = Field(description="{model_id, loaded, total} bytes")
    last_load: dict[str, Any] | None = Field(
        description="{model_id, from_cache, load_time_s, backend, gpu_layers_offloaded}"
    )
    webgpu_available: bool = Field(
        description="The tab has a WebGPU adapter llama.cpp's WebGPU backend can use "
        "(it requires shader-f16), and has not given up on it after device losses"
    )
    webgpu_unavailable_reason: str | None = Field(description="Why not, when it is not")
    adapter: dict[str, Any] | None = Field(
        description="The tab's GPUAdapterInfo: {vendor, architecture, device, description, "
        "is_fallback_adapter, shader_f16}; null without an adapter"
    )
    backend: Literal["webgpu", "wasm"] | None = Field(
        description="What the loaded model runs on (from llama.cpp's load log); null unloaded"
    )
    gpu_layers_offloaded: int | None = Field(
        description="Layers llama.cpp offloaded to WebGPU (its load log); null unloaded"
    )
    gpu_vram_gb: float | None = Field(description="Always null: WebGPU has no memory figure")
    storage_quota_gb: float
    storage_used_gb: float
    storage_persisted: bool | None = Field(
        description="navigator.storage.persist() granted (null: the browser has no such API)"
    )
    webgpu_context_losses: int
    memory_errors: int
    threads: int
    multi_thread: bool
    tabs_attached_total: int
    model_file_requests: int = Field(description="GETs of model files by tabs (downloads)")


class StatusResponse(BaseModel):
    status: Literal["ready", "loading", "error", "idle"]
    model: StatusModel | None
    system: StatusSystem
    performance: StatusPerformance
    health: StatusHealth
    engine: StatusEngine
    loading: StatusLoading | None = Field(None, description="Extension: load in progress")
    load_error: StatusLoadError | None = Field(
        None,
        description="Extension: the last load that failed and was not retried; with no "
        "model serving, status is 'error'",
    )
    browser: StatusBrowser | None = Field(
        None, description="Extension: the browser engine's tab and its own readings"
    )
    models_loaded: list[StatusLoadedModel] = Field(
        default_factory=list,
        description="Extension: every loaded model of the native (default) engine, most "
        "recently used first; `model` is the first of them",
    )
    max_loaded_models: int = Field(1, description="Extension: BROWSER_LLM_MAX_LOADED_MODELS")
