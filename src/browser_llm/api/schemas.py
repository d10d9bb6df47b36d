"""Request and response bodies, exactly as the spec names them (plus documented extensions)."""

from __future__ import annotations

from typing import Annotated, Any, Generic, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt, StrictStr, field_validator

__all__ = [
    "DeleteModelResponse",
    "DownloadInfo",
    "Envelope",
    "ErrorBody",
    "GenerateRequestBody",
    "GenerateResponse",
    "LoadModelResponse",
    "Metadata",
    "ModelDetails",
    "ModelSummary",
    "ModelsResponse",
    "StatusBrowser",
    "StatusResponse",
]

T = TypeVar("T")

Unit = Annotated[float, Field(ge=0, le=1)]
Penalty = Annotated[float, Field(ge=0, le=2)]
StopString = Annotated[StrictStr, Field(min_length=1, max_length=256)]


class HistoryMessage(BaseModel):
    """Extension: one earlier turn of a conversation (POST /generate `history`)."""

    model_config = ConfigDict(extra="forbid")

    role: Literal["system", "user", "assistant"]
    content: StrictStr = Field(max_length=400_000)


class GenerateRequestBody(BaseModel):
    """POST /generate. A null optional field means its default."""

    model_config = ConfigDict(extra="forbid")

    prompt: StrictStr = Field(min_length=1, max_length=400_000, description="Required input")
    max_tokens: Annotated[StrictInt, Field(ge=1, le=4096)] | None = Field(
        None, description="1-4096, default 512; clamped to the room left in the context"
    )
    temperature: Annotated[float, Field(ge=0, le=2)] | None = Field(
        None, description="0-2, default 0.7; 0 is greedy and deterministic"
    )
    top_p: Unit | None = Field(None, description="0-1, default 0.95")
    top_k: Annotated[StrictInt, Field(ge=1, le=100)] | None = Field(
        None, description="1-100, default 40"
    )
    frequency_penalty: Penalty | None = Field(None, description="0-2, default 0")
    presence_penalty: Penalty | None = Field(None, description="0-2, default 0")
    stop: list[StopString] | StopString | None = Field(
        None, description="Up to 8 stop sequences (a single string is accepted too)"
    )
    stream: StrictBool = False
    json_mode: StrictBool = False
    json_schema: dict[str, Any] | None = None
    seed: Annotated[StrictInt, Field(ge=0, le=2**32 - 1)] | None = Field(
        None, description="Extension: sampling seed for reproducible output"
    )
    raw: StrictBool = Field(False, description="Extension: skip the chat template")
    ignore_eos: StrictBool = Field(
        False, description="Extension: keep generating past end-of-sequence (benchmarks)"
    )
    engine: Literal["native", "browser"] | None = Field(
        None, description="Extension: run on this engine; default BROWSER_LLM_ENGINE"
    )
    model: StrictStr | None = Field(
        None,
        min_length=1,
        max_length=200,
        description="Extension: the model to answer (id or alias); loaded on demand when on "
        "disk; default: the loaded model",
    )
    history: list[HistoryMessage] | None = Field(
        None,
        max_length=512,
        description="Extension: earlier turns of the conversation, put through the chat "
        "template before `prompt` (the new user turn); not with `raw`",
    )

    @field_validator("stop")
    @classmethod
    def _bounded_stop(cls, value: list[str] | str | None) -> list[str] | str | None:
        if isinstance(value, list) and len(value) > 8:
            raise ValueError("at most 8 stop sequences")
        return value

    @field_validator("temperature", "top_p", "frequency_penalty", "presence_penalty", mode="before")
    @classmethod
    def _number_not_bool(cls, value: Any) -> Any:
        if isinstance(value, bool) or (value is not None and not isinstance(value, int | float)):
            raise ValueError("must be a number")
        return value


class Usage(BaseModel):
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int
    cached_prompt_tokens: int = Field(
        0, description="Extension: prompt tokens whose KV cells were reused from an earlier request"
    )


class Performance(BaseModel):
    tokens_per_second: float = Field(description="Decode tokens per second")
    latency_ms: float = Field(description="Time to first token")
    total_time_ms: float = Field(description="Request wall time")


class JsonReport(BaseModel):
    """Extension, with json_mode or json_schema: what the output turned out to be."""

    complete: bool = Field(description="The text parses as JSON")
    valid: bool = Field(
        description="It parses and matches json_schema (if one was given), every keyword "
        "checked, including those the grammar cannot enforce"
    )
    value: Any = Field(None, description="The parsed value")
    errors: list[str] = Field(default_factory=list, description="Parse or schema errors")
    closed_early: bool = Field(
        False,
        description="max_tokens was about to run out, so the engine ended the value with its "
        "shortest completion (finish_reason is then length)",
    )


class GenerateResponse(BaseModel):
    text: str
    tokens: int
    finish_reason: Literal["stop", "length", "error"]
    usage: Usage
    performance: Performance
    model: str = Field(description="Extension: the model that answered")
    json_: JsonReport | None = Field(
        None, alias="json", description="Extension: JSON mode result (only with json_mode/schema)"
    )


class ModelSummary(BaseModel):
    id: str
    name: str
    size: str
    vram_required: str
    downloaded: bool
    speed_tier: Literal["fast", "medium", "slow"]
    quality_tier: Literal["excellent", "good", "basic"]
    capabilities: list[str]
    loaded: bool = Field(description="Extension: this model is the one loaded")


class ModelsResponse(BaseModel):
    models: list[ModelSummary]


class ModelParameters(BaseModel):
    total: str
    quantization: str


class ModelPerformance(BaseModel):
    avg_tokens_per_second: float
    avg_latency_ms: float


class DownloadInfo(BaseModel):
    """Extension: a download (or assembly) in progress, or a resumable partial file."""

    state: str = Field(
        description="queued, downloading, retrying, verifying, assembling, paused, done, failed"
    )
    bytes: int
    total_bytes: int | None
    progress: float | None = Field(description="0-1, when the total is known")
    speed_bytes_per_s: float
    eta_ms: float | None
    attempts: int
    error: str | None


class ModelDetails(BaseModel):
    id: str
    name: str
    description: str
    size: str
    vram_required: str
    downloaded: bool
    download_progress: float | None = None
    speed_tier: str
    quality_tier: str
    capabilities: list[str]
    parameters: ModelParameters
    performance: ModelPerformance
    loaded: bool = Field(description="Extension: this model is the one loaded")
    size_bytes: int = Field(description="Extension: size in bytes (approximate until on disk)")
    source: str = Field(description="Extension: package, file or url")
    sha256: str | None = Field(None, description="Extension: expected sha256, when known")
    download: DownloadInfo | None = Field(None, description="Extension: download in progress")
    load: LoadModelResponse | None = Field(None, description="Extension: load in progress")
    load_error: ErrorBody | None = Field(
        None, description="Extension: why the last load failed (cleared by the next load request)"
    )


class LoadModelResponse(BaseModel):
    model_id: str
    status: Literal["loaded", "loading", "error", "unloaded"]
    progress: float | None = None
    estimated_time_ms: float | None = None
    phase: str | None = Field(
        None, description="Extension: fetching, checking, probing, loading or done"
    )
    download: DownloadInfo | None = Field(None, description="Extension: download figures")
    error: ErrorBody | None = Field(
        None,
        description="Extension: why the load failed, with status 'error' (until a load "
        "with ?retry=true)",
    )


class DeleteModelResponse(BaseModel):
    """Extension: DELETE /models/{id}."""

    model_id: str
    deleted: bool
    freed_bytes: int


class StatusModel(BaseModel):
    id: str
    loaded: bool


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
    prefixes: list[str] = Field(description="Digests of the prompt prefixes it served lately")
    reported_at: float | None = Field(description="Unix time of the report")


class StatusCluster(BaseModel):
    """Extension: the replicas behind a cluster ingress (docs/cluster.md)."""

    replicas: list[StatusClusterReplica]
    retried_requests: int = Field(description="Run again after a replica died before a token")
    lost_mid_stream: int = Field(description="Ended by INFERENCE_ERROR: replica died mid-stream")


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


class ErrorBody(BaseModel):
    code: str
    message: str
    details: Any | None = None


class Metadata(BaseModel):
    requestId: str
    timestamp: int
    version: str


class Envelope(BaseModel, Generic[T]):
    success: bool
    data: T | None = None
    error: ErrorBody | None = None
    metadata: Metadata


ModelDetails.model_rebuild()
