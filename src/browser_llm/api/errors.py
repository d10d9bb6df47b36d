"""The exception handlers: every error raised while serving HTTP becomes one
response built from the table in ``api/error_shapes.py``."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from browser_llm.api.envelope import error_response
from browser_llm.api.error_shapes import status_for
from browser_llm.core.errors import BrowserLLMError

__all__ = ["install_error_handlers"]

logger = logging.getLogger(__name__)


def _field_name(loc: tuple[Any, ...]) -> str:
    # Pydantic names the union member it tried ("list[TextPart]", "tagged-union[...]"):
    # not a field the client sent, so left out of the path.
    parts = [str(p) for p in loc if p not in ("body", "query", "path") and "[" not in str(p)]
    return ".".join(parts) or "body"


def _validation_details(exc: RequestValidationError) -> tuple[str, dict[str, Any]]:
    errors = []
    for err in exc.errors():
        if err.get("type") == "json_invalid":
            return "request body is not valid JSON", {"field": "body", "errors": []}
        field = _field_name(tuple(err.get("loc", ())))
        if err.get("type") == "missing" and field == "body":
            message = "request body is required (JSON object)"
        else:
            message = str(err.get("msg", "invalid value"))
        errors.append({"field": field, "message": message, "type": err.get("type")})
    first = errors[0] if errors else {"field": "body", "message": "invalid request"}
    summary = f"{first['field']}: {first['message']}"
    return summary, {"field": first["field"], "errors": errors}


async def _on_domain_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, BrowserLLMError)
    status = status_for(exc.code)
    if status >= 500 and status != 503:
        logger.error("request failed: %s (%s)", exc.message, exc.code)
    headers = None
    if exc.retry_after_s is not None:
        headers = {"Retry-After": str(exc.retry_after_s)}
    return error_response(request, status, exc.code, exc.message, exc.details, headers)


async def _on_validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    message, details = _validation_details(exc)
    return error_response(request, 400, "VALIDATION_ERROR", message, details)


async def _on_http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    if exc.status_code == 404:
        code, message = "NOT_FOUND", f"no such endpoint: {request.method} {request.url.path}"
    elif exc.status_code == 405:
        code, message = "METHOD_NOT_ALLOWED", f"{request.method} is not allowed here"
    else:
        code, message = (
            ("VALIDATION_ERROR" if exc.status_code < 500 else "INTERNAL_ERROR"),
            str(exc.detail),
        )
    return error_response(
        request, exc.status_code, code, message, headers=getattr(exc, "headers", None)
    )


async def _on_unexpected(request: Request, exc: Exception) -> JSONResponse:
    logger.exception("unexpected error", exc_info=exc)
    return error_response(request, 500, "INTERNAL_ERROR", "unexpected server error")


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(BrowserLLMError, _on_domain_error)
    app.add_exception_handler(RequestValidationError, _on_validation_error)
    app.add_exception_handler(StarletteHTTPException, _on_http_error)
    app.add_exception_handler(Exception, _on_unexpected)
