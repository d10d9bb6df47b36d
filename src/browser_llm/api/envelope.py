"""The response envelope every API answer is wrapped in."""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

from fastapi import Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.types import Scope

from browser_llm import __version__
from browser_llm.api.error_shapes import (
    anthropic_error,
    anthropic_status,
    envelope_error,
    ollama_error,
    openai_error,
    status_for,
)

__all__ = [
    "arrived_at",
    "error_body",
    "error_response",
    "is_anthropic_path",
    "is_ollama_path",
    "is_openai_path",
    "metadata",
    "new_request_id",
    "ok",
    "request_id_of",
]


def is_openai_path(path: str) -> bool:
    """/v1/... speaks OpenAI's error shape (but /v1/messages); /api/v1/... the envelope."""
    return path.startswith("/v1/") and not is_anthropic_path(path)


def is_anthropic_path(path: str) -> bool:
    """/v1/messages and below speak Anthropic's error shape."""
    return path == "/v1/messages" or path.startswith("/v1/messages/")


def is_ollama_path(path: str) -> bool:
    """/api/<name> (Ollama's API) speaks Ollama's error shape; /api/v1/... is the seed API's.
    Ollama has no route named v1, so the two never overlap."""
    return path.startswith("/api/") and not (path == "/api/v1" or path.startswith("/api/v1/"))


def new_request_id() -> str:
    return f"req_{uuid.uuid4().hex[:16]}"


def request_id_of(request: Request) -> str:
    rid = getattr(request.state, "request_id", None)
    if rid is None:
        rid = request.state.request_id = new_request_id()
    return str(rid)


def arrived_at(request: Request) -> float:
    """When the request arrived (the middleware's clock), for timings from arrival."""
    started = getattr(request.state, "started_at", None)
    return float(started) if started is not None else time.perf_counter()


def metadata(request_id: str) -> dict[str, Any]:
    return {"requestId": request_id, "timestamp": int(time.time()), "version": __version__}


def ok(request: Request, data: BaseModel, exclude_none: bool = False) -> JSONResponse:
    """A success envelope; exclude_none drops optional extension fields that do not apply."""
    body = {
        "success": True,
        "data": data.model_dump(mode="json", exclude_none=exclude_none, by_alias=True),
        "metadata": metadata(request_id_of(request)),
    }
    return JSONResponse(body)


def error_response(
    request: Request,
    status_code: int,
    code: str,
    message: str,
    details: Any = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    if is_ollama_path(request.url.path):
        return JSONResponse(ollama_error(code, message), status_code=status_code, headers=headers)
    if is_anthropic_path(request.url.path):
        status = anthropic_status(code) if status_code == status_for(code) else status_code
        return JSONResponse(
            anthropic_error(code, message, details), status_code=status, headers=headers
        )
    if is_openai_path(request.url.path):
        param = details.get("field") if isinstance(details, dict) else None
        chat = request.url.path.rstrip("/").endswith("/chat/completions")
        return JSONResponse(
            openai_error(code, message, param if isinstance(param, str) else None, details, chat),
            status_code=status_code,
            headers=headers,
        )
    body = {
        "success": False,
        "error": envelope_error(code, message, details),
        "metadata": metadata(request_id_of(request)),
    }
    return JSONResponse(body, status_code=status_code, headers=headers)


def error_body(scope: Scope, code: str, message: str) -> bytes:
    """An error body for middleware that answers before any route runs."""
    if is_ollama_path(scope.get("path", "")):
        return json.dumps(ollama_error(code, message)).encode()
    if is_anthropic_path(scope.get("path", "")):
        return json.dumps(anthropic_error(code, message)).encode()
    if is_openai_path(scope.get("path", "")):
        return json.dumps(openai_error(code, message)).encode()
    request_id = scope.get("state", {}).get("request_id") or new_request_id()
    body = {
        "success": False,
        "error": envelope_error(code, message),
        "metadata": metadata(str(request_id)),
    }
    return json.dumps(body).encode()
