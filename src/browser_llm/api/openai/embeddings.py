"""POST /v1/embeddings, in OpenAI's shape, on the loaded (or named) model."""

from __future__ import annotations

import base64
import struct
from typing import Literal

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, StrictInt, StrictStr

from browser_llm.api.envelope import request_id_of
from browser_llm.api.services import services
from browser_llm.core.errors import ValidationError

__all__ = ["router"]

router = APIRouter(prefix="/v1", tags=["openai"])


class EmbeddingRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    # Bounded in the service (256 texts; the body size limit bounds their length).
    input: StrictStr | list[StrictStr] | list[list[StrictInt]]
    model: StrictStr = Field("", max_length=200)
    encoding_format: Literal["float", "base64"] = "float"
    dimensions: StrictInt | None = None
    user: StrictStr | None = None  # ignored: metadata


def _encode(vector: list[float], encoding: str) -> list[float] | str:
    if encoding == "float":
        return vector
    # OpenAI's base64: the little-endian float32 array.
    return base64.b64encode(struct.pack(f"<{len(vector)}f", *vector)).decode()


@router.post("/embeddings", summary="OpenAI-compatible embeddings (mean-pooled, L2-normalised)")
async def embeddings(body: EmbeddingRequest, request: Request) -> Response:
    if isinstance(body.input, list) and body.input and not isinstance(body.input[0], str):
        raise ValidationError(
            "input: token arrays are not supported; send text", {"field": "input"}
        )
    texts = [body.input] if isinstance(body.input, str) else [str(t) for t in body.input]
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
