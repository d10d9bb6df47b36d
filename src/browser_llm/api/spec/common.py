"""Shared route declarations: the error responses every endpoint may give."""

from __future__ import annotations

from typing import Any

from browser_llm.api.spec.schemas import Envelope

__all__ = ["ERROR_RESPONSES"]

_ERROR = {"model": Envelope[None]}

ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    400: {**_ERROR, "description": "VALIDATION_ERROR"},
    404: {**_ERROR, "description": "NOT_FOUND"},
    500: {**_ERROR, "description": "INTERNAL_ERROR, INFERENCE_ERROR or MODEL_LOAD_FAILED"},
    503: {**_ERROR, "description": "MODEL_NOT_LOADED"},
}
