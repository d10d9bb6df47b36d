"""All settings in one place: `browser-llm serve` flags and BROWSER_LLM_* variables.

Nothing else in the package reads the environment.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = ["DEFAULT_MODEL_ID", "Settings"]

DEFAULT_MODEL_ID = "smollm2-135m-instruct-q4"


def _default_models_dir() -> Path:
    cache = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(cache) / "browser-llm" / "models"


def _default_threads() -> int:
    # llama.cpp's CPU kernels are compute-bound: one thread per physical core.
    try:
        import psutil

        physical = psutil.cpu_count(logical=False)
    except Exception:  # pragma: no cover - psutil is a pinned dependency
        physical = None
    return max(1, physical or os.cpu_count() or 1)


class Settings(BaseSettings):
    """Server settings. Every field can be set as BROWSER_LLM_<NAME>."""

    model_config = SettingsConfigDict(env_prefix="BROWSER_LLM_", extra="ignore")

    host: str = Field("127.0.0.1", description="Address to bind; loopback by default.")
    port: int = Field(3000, ge=1, le=65535)
    model: str = Field(
        DEFAULT_MODEL_ID, description="Model id loaded at start-up; 'none' starts idle."
    )
    models_dir: Path = Field(default_factory=_default_models_dir)
    context_size: int = Field(
        4096, ge=256, le=131072, description="Context (KV cache) tokens of each sequence."
    )
    parallel: int = Field(
        0, ge=0, le=64, description="Sequences decoded together; 0 derives it from context_size."
    )
    max_queue: int = Field(64, ge=0, le=10000, description="Requests that may wait for a slot.")
    batch_size: int = Field(512, ge=32, le=8192, description="Prompt tokens per decode call.")
    threads: int = Field(default_factory=_default_threads, ge=1, le=256)
    gpu_layers: int = Field(
        -1, ge=-1, description="Layers offloaded to a GPU; -1 offloads all when the build can."
    )
    flash_attn: Literal["auto", "on", "off"] = Field(
        "auto", description="llama.cpp flash attention (auto: on where supported; see bench/)"
    )
    storage_quota_gb: float | None = Field(
        None, gt=0, description="Cap on model storage; unset means the free disk space."
    )
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    log_prompts: bool = Field(False, description="Log prompt text (off: prompts stay private).")

    @field_validator("model")
    @classmethod
    def _normalise_model(cls, value: str) -> str:
        return value.strip()

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
    def model_to_load(self) -> str | None:
        return None if self.model.lower() in ("", "none") else self.model
