"""Request and response bodies, exactly as the spec names them (plus documented extensions)."""

from __future__ import annotations

from typing import Annotated, Any, Generic, Literal, TypeVar

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictFloat,
    StrictInt,
    StrictStr,
    field_validator,
)

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
    keep_alive: StrictStr | StrictInt | StrictFloat | None = Field(
        None,
        description="Extension: how long the model stays loaded once idle (Ollama's "
        'keep_alive: "5m", seconds, negative for ever, 0 unload when idle); default '
        "BROWSER_LLM_KEEP_ALIVE",
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
    reasoning: str | None = Field(
        None,
        description="Extension: a thinking model's reasoning, apart from the text (only "
        "for models whose chat template marks thinking)",
    )
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
