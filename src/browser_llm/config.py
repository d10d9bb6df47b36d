"""All settings in one place: `browser-llm serve` flags and BROWSER_LLM_* variables.

Nothing else in the package reads the environment.
"""

from __future__ import annotations

import ipaddress
import os
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from browser_llm.core.durations import FOREVER_S, duration_seconds

__all__ = ["DEFAULT_MODEL_ID", "Settings"]

DEFAULT_MODEL_ID = "smollm2-135m-instruct-q4"


def _default_models_dir() -> Path:
    cache = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(cache) / "browser-llm" / "models"


def _default_data_dir() -> Path:
    data = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(data) / "browser-llm"


def _default_threads() -> int:
    # llama.cpp's CPU kernels are compute-bound: one thread per physical core.
    try:
        import psutil

        physical = psutil.cpu_count(logical=False)
    except Exception:  # pragma: no cover - psutil is a pinned dependency
        physical = None
    return max(1, physical or os.cpu_count() or 1)


def parse_aliases(text: str) -> dict[str, str]:
    """'gpt-4o-mini=smollm2-135m-instruct-q4, fast=...' -> {alias: model id}."""
    aliases: dict[str, str] = {}
    for part in text.split(","):
        if not part.strip():
            continue
        alias, sep, target = part.partition("=")
        if not sep or not alias.strip() or not target.strip():
            raise ValueError(f"alias {part.strip()!r} is not name=model-id")
        aliases[alias.strip()] = target.strip()
    return aliases


class Settings(BaseSettings):
    """Server settings. Every field can be set as BROWSER_LLM_<NAME>."""

    model_config = SettingsConfigDict(env_prefix="BROWSER_LLM_", extra="ignore")

    host: str = Field("127.0.0.1", description="Address to bind; loopback by default.")
    port: int = Field(3000, ge=1, le=65535)
    model: str = Field(
        DEFAULT_MODEL_ID, description="Model id loaded at start-up; 'none' starts idle."
    )
    models_dir: Path = Field(default_factory=_default_models_dir)
    data_dir: Path = Field(
        default_factory=_default_data_dir,
        description="The server's own data (the Responses API's stored responses)",
    )
    responses_max_count: int = Field(
        10000,
        ge=1,
        le=10_000_000,
        description="Stored responses kept at most (/v1/responses, store=true); the oldest "
        "go first",
    )
    responses_max_age: str = Field(
        "720h",
        description="How long a stored response is kept (a duration such as 720h, or "
        "seconds; negative: for ever)",
    )
    aliases: str = Field(
        "",
        description="Other names for models, as name=model-id pairs, comma separated "
        "(e.g. gpt-4o-mini=smollm2-135m-instruct-q4)",
    )
    model_load_wait_s: float = Field(
        300.0,
        gt=0,
        le=3600,
        description="How long a request naming a model on disk waits for its on-demand load",
    )
    max_loaded_models: int = Field(
        1,
        ge=1,
        le=16,
        description="Models that may stay loaded at once, each in its own engine process "
        "(native engine); loading one more unloads the least recently used idle one",
    )
    keep_alive: str = Field(
        "-1",
        description="How long a model stays loaded after its last request (a duration such "
        "as 5m, 30s, or seconds; negative: for ever; 0: unload when idle). Requests may "
        "set their own (Ollama's keep_alive)",
    )
    model_memory_gb: float = Field(
        0.0,
        ge=0,
        description="Memory the loaded models' files may take together; 0: checked against "
        "the RAM available when a model is loaded",
    )
    context_size: int = Field(
        4096, ge=256, le=131072, description="Context (KV cache) tokens of each sequence."
    )
    parallel: int = Field(
        0, ge=0, le=64, description="Sequences decoded together; 0 derives it from context_size."
    )
    max_queue: int = Field(64, ge=0, le=10000, description="Requests that may wait for a slot.")
    batch_size: int = Field(512, ge=32, le=8192, description="Prompt tokens per decode call.")
    threads: int = Field(default_factory=_default_threads, ge=1, le=256)
    adaptive_threads: bool = Field(
        True,
        description="Use fewer llama.cpp threads while other processes hold cores "
        "(false: always `threads`)",
    )
    gpu_layers: int = Field(
        -1, ge=-1, description="Layers offloaded to a GPU; -1 offloads all when the build can."
    )
    flash_attn: Literal["auto", "on", "off"] = Field(
        "auto", description="llama.cpp flash attention (auto: on where supported; see bench/)"
    )
    prefix_cache: bool = Field(
        True, description="Reuse the KV cells of a slot's last request for a shared prompt prefix"
    )
    prompt_cache_gb: float = Field(
        2.0,
        ge=0,
        description="Disk the prompt cache may take: the KV state of long prompt prefixes, "
        "kept across restarts, model swaps and slot reuse (least recently used files go "
        "first); 0 turns it off, as does prefix_cache=false",
    )
    prompt_cache_min_tokens: int = Field(
        256,
        ge=64,
        le=131072,
        description="Prompts whose cacheable prefix is shorter than this are not saved",
    )
    prompt_cache_dir: Path | None = Field(
        None, description="Folder of the prompt cache; default: prompt-cache next to models_dir"
    )
    speculation: bool = Field(
        False,
        description="Speculative decoding: drafts looked up in each request's prompt and "
        "output are verified in the same decode as the other streams (same output); off by "
        "default: it did not pay with the default model on 2 cores (bench/README.md)",
    )
    json_repeat_limit: int = Field(
        3,
        ge=0,
        le=1000,
        description="JSON output (response_format, tools): after this many identical objects, "
        "arrays or long strings in a row, an array gets no further item: the token that would "
        "start one is set aside for the model's next best choice (a looping answer otherwise "
        "runs to max_tokens); 0 turns it off",
    )
    storage_quota_gb: float | None = Field(
        None, gt=0, description="Cap on model storage; unset means the free disk space."
    )
    api_key: SecretStr | None = Field(
        None, description="Require this key (Authorization: Bearer, or X-API-Key) on every call"
    )
    allowed_hosts: Annotated[list[str], NoDecode] = Field(
        default_factory=list, description="Host names accepted besides loopback (comma list)"
    )
    cors_origins: Annotated[list[str], NoDecode] = Field(
        default_factory=list, description="Origins allowed cross-origin access (comma list)"
    )
    rate_limit_generate: int = Field(60, ge=1, description="Generate calls per minute per client")
    rate_limit_status: int = Field(120, ge=1, description="Status calls per minute per client")
    rate_limit_other: int = Field(300, ge=1, description="Other calls per minute per client")
    rate_limit_storage: str = Field(
        "memory://", description="limits storage URI; redis://host:port to share limits"
    )
    max_body_bytes: int = Field(1_048_576, ge=1024, description="Largest request body")
    max_ws_message_bytes: int = Field(1_048_576, ge=1024, description="Largest WebSocket message")
    engine: Literal["native", "browser"] = Field(
        "native", description="Engine for requests without an 'engine' field (see browser-engine)"
    )
    engine_fallback: bool = Field(
        False, description="Browser engine without a tab (or tab lost before output): use native"
    )
    browser_backend: Literal["auto", "webgpu", "wasm"] = Field(
        "auto",
        description="Browser engine backend: auto (WebGPU when the tab's adapter suits llama.cpp, "
        "else WebAssembly), webgpu (a tab that cannot is a WEBGPU_ERROR) or wasm",
    )
    browser_tab_timeout_s: float = Field(
        20.0,
        gt=0,
        le=3600,
        description="A browser tab silent this long (it answers pings every quarter of it) is "
        "dropped and its requests fail",
    )
    wllama_dir: Path | None = Field(
        None, description="Installed @wllama/wllama folder; default web-engine/node_modules/..."
    )
    engine_process: bool = Field(
        True,
        description="Run llama.cpp in a child process (a crash there cannot end the server); "
        "false runs it inside the server process (benchmarks, debugging)",
    )
    engine_wedged_s: float = Field(
        60.0,
        ge=1,
        le=86400,
        description="Engine process owing work but silent this long (and not computing) is "
        "wedged: killed and restarted (5x as long when it uses a CPU: a long prompt step)",
    )
    engine_load_wedged_s: float = Field(
        600.0, ge=1, le=86400, description="The same bound while it loads a model"
    )
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    log_prompts: bool = Field(False, description="Log prompt text (off: prompts stay private).")
    shutdown_grace_s: float = Field(
        30.0, ge=0, le=3600, description="On SIGTERM/SIGINT: how long running requests may finish"
    )
    fault_inject: bool = Field(
        False, description="TESTING ONLY: prompts with [[fault:...]] markers make decoding fail"
    )

    @field_validator("model")
    @classmethod
    def _normalise_model(cls, value: str) -> str:
        return value.strip()

    @field_validator("keep_alive")
    @classmethod
    def _check_keep_alive(cls, value: str) -> str:
        duration_seconds(value)  # malformed: a start-up error
        return value.strip()

    @property
    def keep_alive_s(self) -> float:
        """The server's default keep_alive in seconds (FOREVER_S: for ever)."""
        return duration_seconds(self.keep_alive)

    @field_validator("responses_max_age")
    @classmethod
    def _check_responses_max_age(cls, value: str) -> str:
        duration_seconds(value)  # malformed: a start-up error
        return value.strip()

    @property
    def responses_max_age_s(self) -> float | None:
        """Seconds a stored response is kept; None: for ever."""
        seconds = duration_seconds(self.responses_max_age)
        return None if seconds == FOREVER_S else seconds

    @property
    def responses_db(self) -> Path:
        return self.data_dir / "responses.sqlite3"

    @field_validator("aliases")
    @classmethod
    def _check_aliases(cls, value: str) -> str:
        parse_aliases(value)  # a malformed pair is a start-up error, not a silent no-op
        return value

    @property
    def alias_map(self) -> dict[str, str]:
        return parse_aliases(self.aliases)

    @field_validator("allowed_hosts", "cors_origins", mode="before")
    @classmethod
    def _comma_list(cls, value: object) -> object:
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @property
    def shared_redis_url(self) -> str | None:
        """The Redis URL in rate_limit_storage: processes that share it share their limits,
        metrics and profile (observability/shared.py); None when limits stay in memory."""
        storage = self.rate_limit_storage
        return storage if storage.startswith(("redis://", "rediss://", "unix://")) else None

    @property
    def binds_loopback(self) -> bool:
        if self.host == "localhost":
            return True
        try:
            return ipaddress.ip_address(self.host).is_loopback
        except ValueError:
            return False

    def exposure_problem(self) -> str | None:
        """Why these settings must not start, or None. Binding beyond loopback needs a key."""
        if not self.binds_loopback and self.api_key is None:
            return (
                f"refusing to listen on {self.host}: that address is reachable from other "
                "machines and no API key is set. Set BROWSER_LLM_API_KEY (clients then send "
                "'Authorization: Bearer <key>'), or bind to 127.0.0.1."
            )
        return None

    @property
    def sequences(self) -> int:
        """Concurrent sequences: as set, or as many as 32768 KV tokens hold, 1 to 8.

        Each sequence has its own context_size cells, so KV memory grows with
        both; 8 is where total throughput stops growing on 2 cores.
        """
        if self.parallel:
            return self.parallel
        return max(1, min(8, 32768 // self.context_size))

    @property
    def prompt_cache_path(self) -> Path:
        return self.prompt_cache_dir or self.models_dir.parent / "prompt-cache"

    @property
    def prompt_cache_bytes(self) -> int:
        """The prompt cache's disk budget; 0 when it is off."""
        return int(self.prompt_cache_gb * 1024**3) if self.prefix_cache else 0

    @property
    def model_to_load(self) -> str | None:
        return None if self.model.lower() in ("", "none") else self.model
