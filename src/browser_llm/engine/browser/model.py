"""The model side of the browser engine: what the tab should hold and whether it fits."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from browser_llm.core.errors import ModelLoadFailedError, StorageError, ValidationError
from browser_llm.core.types import LoadedModel
from browser_llm.engine.base import GenerationRequest
from browser_llm.engine.browser.tab import TabReadings
from browser_llm.engine.chat_template import ChatTemplate
from browser_llm.engine.prompt import prompt_text
from browser_llm.models.gguf import InvalidGGUFError
from browser_llm.models.gguf_info import GgufHeader, read_gguf_header

__all__ = [
    "BROWSER_FILE_LIMIT_BYTES",
    "WantedModel",
    "chat_template",
    "check_file_limit",
    "check_quota",
    "inspect_model",
    "load_record",
    "loaded_model",
    "tab_prompt",
]

logger = logging.getLogger(__name__)

# Browsers cannot hand a single ArrayBuffer/Blob over 2 GiB to wasm32 memory.
BROWSER_FILE_LIMIT_BYTES = 2 * 1024**3
_GB = 1024**3


@dataclass(frozen=True)
class WantedModel:
    """A model the server wants the tab to hold, checked and with its header read."""

    model_id: str
    path: str
    size_bytes: int
    header: GgufHeader


def check_quota(readings: TabReadings, model_id: str, size_bytes: int) -> None:
    """STORAGE_ERROR when the tab has no room for a model it does not have yet."""
    if model_id in readings.cached_models or readings.storage_quota_gb <= 0:
        return
    free = (readings.storage_quota_gb - readings.storage_used_gb) * _GB
    if size_bytes > free:
        raise StorageError(
            f"model '{model_id}' needs {size_bytes / _GB:.2f} GB of browser "
            f"storage; the tab has {max(0.0, free) / _GB:.2f} GB free",
            {
                "model_id": model_id,
                "size_bytes": size_bytes,
                "storage_quota_gb": readings.storage_quota_gb,
                "storage_used_gb": readings.storage_used_gb,
                "reason": "over_browser_storage_quota",
            },
        )


def check_file_limit(model_id: str, size: int, limit: int) -> None:
    """STORAGE_ERROR for a file larger than a browser tab can load."""
    if size > limit:
        raise StorageError(
            f"model '{model_id}' is {size / _GB:.2f} GB; a browser tab can load "
            f"files up to {limit / _GB:.2f} GB",
            {
                "model_id": model_id,
                "size_bytes": size,
                "limit_bytes": limit,
                "reason": "over_browser_file_limit",
            },
        )


def inspect_model(model_id: str, file: Path, limit: int) -> WantedModel:
    """Size check and GGUF header of a model the tab should load (blocking file reads)."""
    size = file.stat().st_size
    check_file_limit(model_id, size, limit)
    try:
        header = read_gguf_header(file)
    except (OSError, InvalidGGUFError) as exc:
        logger.warning("model %s: GGUF header unreadable: %s", model_id, exc)
        details = {"model_id": model_id, "reason": "bad_gguf_header"}
        raise ModelLoadFailedError(
            f"model '{model_id}' has an unreadable GGUF header", details
        ) from exc
    return WantedModel(model_id, str(file), size, header)


def chat_template(wanted: WantedModel) -> ChatTemplate | None:
    header = wanted.header
    if not header.chat_template:
        return None
    try:
        return ChatTemplate(header.chat_template, header.bos_text, header.eos_text)
    except ValueError as exc:
        logger.warning("model %s: chat template ignored: %s", wanted.model_id, exc)
        return None


def loaded_model(
    wanted: WantedModel, data: dict[str, Any], context_size: int, has_template: bool
) -> LoadedModel:
    """The LoadedModel for a tab's `loaded` message (its figures, checked)."""

    def number(name: str, default: int) -> int:
        value = data.get(name)
        return value if isinstance(value, int) and value > 0 else default

    load_time = data.get("load_time_s")
    return LoadedModel(
        model_id=wanted.model_id,
        path=wanted.path,
        context_length=number("context_length", context_size),
        train_context_length=number("train_context_length", 0),
        n_vocab=number("n_vocab", 0),
        has_chat_template=has_template,
        size_bytes=wanted.size_bytes,
        load_time_s=float(load_time) if isinstance(load_time, int | float) else 0.0,
        description=wanted.header.name,
        metadata={"engine": "browser"},
    )


def load_record(wanted: WantedModel, data: dict[str, Any], model: LoadedModel) -> dict[str, Any]:
    """/status `browser.last_load`: what the tab's `loaded` message said about the load."""
    backend = data.get("backend")
    layers = data.get("gpu_layers_offloaded")
    return {
        "model_id": wanted.model_id,
        "from_cache": bool(data.get("from_cache")),
        "load_time_s": model.load_time_s,
        "backend": backend if backend in ("webgpu", "wasm") else None,
        "gpu_layers_offloaded": layers if isinstance(layers, int) and layers >= 0 else None,
    }


def tab_prompt(
    template: ChatTemplate | None, wanted: WantedModel | None, request: GenerationRequest
) -> str:
    """The prompt text the tab tokenizes: templated here, as the native engine does."""
    text, has_bos = prompt_text(template, request)
    if has_bos and wanted is not None and wanted.header.add_bos:
        # The tab's tokenizer adds BOS itself; a second one would change the prompt.
        text = text[len(wanted.header.bos_text) :]
    if not text:
        raise ValidationError("prompt is empty after templating", {"field": "prompt"})
    return text
