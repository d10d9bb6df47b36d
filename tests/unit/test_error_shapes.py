"""One error table: docs/api.md prints it, and every transport's body comes from it."""

from __future__ import annotations

import re
from pathlib import Path

from browser_llm.api.error_shapes import (
    ERRORS,
    openai_error,
    openai_error_of,
    status_for,
    stream_error_of,
)
from browser_llm.core import errors as domain
from browser_llm.core.errors import OverloadedError, ValidationError

DOCS = Path(__file__).resolve().parents[2] / "docs" / "api.md"
SPEC_CODES = {
    "MODEL_NOT_LOADED",
    "MODEL_LOAD_FAILED",
    "VALIDATION_ERROR",
    "INFERENCE_ERROR",
    "WEBGPU_ERROR",
    "STORAGE_ERROR",
    "RATE_LIMIT",
    "INTERNAL_ERROR",
}


def test_docs_print_the_same_table() -> None:
    rows = re.findall(r"^\| `([A-Z_]+)` \| (\d+) \| `([A-Z_]+)` \|", DOCS.read_text(), re.M)
    documented = {code: (int(status), spec) for code, status, spec in rows}
    assert documented == {c: (k.status, k.spec_code) for c, k in ERRORS.items()}


def test_every_code_maps_to_one_of_the_specs_codes() -> None:
    assert set(ERRORS) >= SPEC_CODES
    for code, kind in ERRORS.items():
        assert kind.spec_code in SPEC_CODES, code
        if code in SPEC_CODES:
            assert kind.spec_code == code


def test_every_domain_error_has_a_row() -> None:
    classes = [getattr(domain, n) for n in domain.__all__ if isinstance(getattr(domain, n), type)]
    assert {cls.code for cls in classes} <= set(ERRORS)


def test_stream_error_is_the_specs_string_plus_code() -> None:
    exc = ValidationError("max_tokens: too big", {"field": "max_tokens"})
    assert stream_error_of(exc) == {
        "error": "max_tokens: too big",
        "code": "VALIDATION_ERROR",
        "details": {"field": "max_tokens"},
    }
    assert "details" not in stream_error_of(OverloadedError("full"))


def test_openai_type_follows_the_status_not_a_constant() -> None:
    assert openai_error("VALIDATION_ERROR", "x")["error"]["type"] == "invalid_request_error"
    assert openai_error("RATE_LIMIT", "x")["error"]["type"] == "rate_limit_error"
    assert openai_error("NOT_FOUND", "x")["error"]["type"] == "not_found_error"
    assert openai_error("INFERENCE_ERROR", "x")["error"]["type"] == "server_error"
    body = openai_error_of(ValidationError("stop: too long", {"field": "stop"}))
    assert body["error"]["param"] == "stop" and body["error"]["code"] == "VALIDATION_ERROR"
    assert status_for("NO_SUCH_CODE") == 500
