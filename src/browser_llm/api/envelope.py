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

__all__ = [
    "error_body",
    "error_response",
    "is_openai_path",
    "metadata",
    "new_request_id",
    "ok",
    "openai_error",
    "request_id_of",
]

_OPENAI_TYPES = {
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    429: "rate_limit_error",
}


def is_openai_path(path: str) -> bool:
    """/v1/... speaks OpenAI's error shape; /api/v1/... the envelope."""
    return path.startswith("/v1/")


def openai_error(status: int, code: str, message: str, param: str | None = None) -> dict[str, Any]:
    kind = _OPENAI_TYPES.get(status, "server_error" if status >= 500 else "invalid_request_error")
    return {"error": {"message": message, "type": kind, "param": param, "code": code}}


def new_request_id() -> str:
    return f"req_{uuid.uuid4().hex[:16]}"


def request_id_of(request: Request) -> str:
    rid = getattr(request.state, "request_id", None)
    if rid is None:
        rid = request.state.request_id = new_request_id()
    return str(rid)


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
    if is_openai_path(request.url.path):
        param = details.get("field") if isinstance(details, dict) else None
        return JSONResponse(
            openai_error(status_code, code, message, param),
            status_code=status_code,
            headers=headers,
        )
    error: dict[str, Any] = {"code": code, "message": message}
    if details is not None:
        error["details"] = details
    body = {"success": False, "error": error, "metadata": metadata(request_id_of(request))}
    return JSONResponse(body, status_code=status_code, headers=headers)


def error_body(scope: Scope, code: str, message: str, status: int = 400) -> bytes:
    """An error body for middleware that answers before any route runs."""
    if is_openai_path(scope.get("path", "")):
        return json.dumps(openai_error(status, code, message)).encode()
    request_id = scope.get("state", {}).get("request_id") or new_request_id()
    body = {
        "success": False,
        "error": {"code": code, "message": message},
        "metadata": metadata(str(request_id)),
    }
    return json.dumps(body).encode()
