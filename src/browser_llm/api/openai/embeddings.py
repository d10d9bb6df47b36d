"""POST /v1/embeddings, in OpenAI's shape, on the loaded (or named) model."""

from __future__ import annotations

import base64
import struct
from typing import Any, Literal

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, StrictInt, StrictStr

from browser_llm.api.envelope import request_id_of
from browser_llm.api.services import services
from browser_llm.core.errors import ValidationError
from browser_llm.core.types import EmbedInput

__all__ = ["router"]

router = APIRouter(prefix="/v1", tags=["openai"])


class EmbeddingRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    # Bounded in the service (256 inputs; the body size limit bounds their length). Token
    # arrays are ids of the model's own vocabulary (checked there), as llama-server reads them.
    input: StrictStr | list[Any] = Field(
        description="a string, a list of strings, a token array (int[]) or a list of them"
    )
    model: StrictStr = Field("", max_length=200)
    encoding_format: Literal["float", "base64"] = "float"
    dimensions: StrictInt | None = None
    user: StrictStr | None = None  # ignored: metadata


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _inputs(given: str | list[Any]) -> list[EmbedInput]:
    """The inputs: texts, or token arrays (int[] is one array)."""
    if isinstance(given, str):
        return [given]
    if given and all(_is_int(t) for t in given):
        return [list(given)]
    if all(isinstance(t, str) for t in given):
        return list(given)
    if all(isinstance(t, list) and all(_is_int(i) for i in t) for t in given):
        return list(given)
    raise ValidationError(
        "input: a string, a list of strings, a token array (int[]) or a list of token "
        "arrays (int[][])",
        {"field": "input"},
    )


def _encode(vector: list[float], encoding: str) -> list[float] | str:
    if encoding == "float":
        return vector
    # OpenAI's base64: the little-endian float32 array.
    return base64.b64encode(struct.pack(f"<{len(vector)}f", *vector)).decode()


@router.post("/embeddings", summary="OpenAI-compatible embeddings (mean-pooled, L2-normalised)")
async def embeddings(body: EmbeddingRequest, request: Request) -> Response:
    texts = _inputs(body.input)
    svc = services(request)
    result = await svc.embeddings.embed(texts, body.model or None, request_id_of(request))
    width = len(result.vectors[0]) if result.vectors else 0
    if body.dimensions is not None and body.dimensions != width:
        raise ValidationError(
            f"dimensions: this model's embeddings have {width} dimensions; other sizes are "
            "not supported",
            {"field": "dimensions", "dimensions": width},
        )
    data = [
        {"object": "embedding", "index": i, "embedding": _encode(v, body.encoding_format)}
        for i, v in enumerate(result.vectors)
    ]
    usage = {"prompt_tokens": result.prompt_tokens, "total_tokens": result.prompt_tokens}
    return JSONResponse({"object": "list", "data": data, "model": result.model_id, "usage": usage})
