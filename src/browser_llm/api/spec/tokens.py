"""POST /tokenize and /detokenize (extensions): the loaded model's vocabulary."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from browser_llm.api.envelope import ok
from browser_llm.api.services import services
from browser_llm.api.spec.common import ERROR_RESPONSES
from browser_llm.api.spec.schemas import Envelope
from browser_llm.api.spec.token_schemas import (
    DetokenizeBody,
    DetokenizeResponse,
    TokenizeBody,
    TokenizeResponse,
)

__all__ = ["router"]

router = APIRouter(tags=["tokens"])


@router.post(
    "/tokenize",
    response_model=Envelope[TokenizeResponse],
    responses=ERROR_RESPONSES,
    summary="Token ids of a text with the loaded model's vocabulary (extension)",
)
async def tokenize(body: TokenizeBody, request: Request) -> Response:
    result = await services(request).tokens.tokenize(
        body.text, body.add_special, body.parse_special, body.engine
    )
    data = TokenizeResponse(tokens=result.tokens, count=len(result.tokens), model=result.model_id)
    return ok(request, data)


@router.post(
    "/detokenize",
    response_model=Envelope[DetokenizeResponse],
    responses=ERROR_RESPONSES,
    summary="Text of token ids with the loaded model's vocabulary (extension)",
)
async def detokenize(body: DetokenizeBody, request: Request) -> Response:
    model_id, text = await services(request).tokens.detokenize(
        body.tokens, body.remove_special, body.unparse_special, body.engine
    )
    return ok(request, DetokenizeResponse(text=text, model=model_id))
