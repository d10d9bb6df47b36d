"""GET /health and GET /status (its body comes from service/status.py)."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, Request, Response
from pydantic import BaseModel

from browser_llm.api.envelope import ok
from browser_llm.api.services import services
from browser_llm.api.spec.schemas import Envelope
from browser_llm.api.spec.status_schemas import StatusResponse

__all__ = ["router"]

router = APIRouter(tags=["status"])


class Health(BaseModel):
    status: Literal["ok"] = "ok"


@router.get(
    "/health",
    response_model=Envelope[Health],
    summary="Liveness check (open without an API key, not rate limited)",
)
async def health(request: Request) -> Response:
    return ok(request, Health())


@router.get("/status", response_model=Envelope[StatusResponse], summary="System status")
async def get_status(request: Request) -> Response:
    body = StatusResponse.model_validate(services(request).status.snapshot())
    return ok(request, body)
