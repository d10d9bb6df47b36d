"""JSON mode on the service side: the constraint for a request, and the check of its output."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import jsonschema
from jsonschema.exceptions import SchemaError

from browser_llm.core.errors import ValidationError
from browser_llm.engine.json_grammar import grammar_for

__all__ = ["JsonCheck", "check_json_output", "json_constraint"]


def json_constraint(json_mode: bool, schema: dict[str, Any] | None) -> str | None:
    """The grammar a request's output must follow; 400 for a schema that cannot be enforced."""
    if schema is not None:
        try:
            jsonschema.validators.validator_for(schema).check_schema(schema)
        except SchemaError as exc:
            where = "/".join(str(p) for p in exc.absolute_path) or "#"
            raise ValidationError(
                f"json_schema is not a valid JSON Schema at {where}: {exc.message}",
                {"field": "json_schema", "path": where},
            ) from exc
    return grammar_for(json_mode, schema)


@dataclass(frozen=True)
class JsonCheck:
    """What came out: complete (parses), valid (matches the schema), the value, the errors."""

    complete: bool
    valid: bool
    value: Any = None
    errors: list[str] = field(default_factory=list)


def check_json_output(text: str, schema: dict[str, Any] | None) -> JsonCheck:
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        return JsonCheck(False, False, None, [f"incomplete or invalid JSON: {exc.msg}"])
    if schema is None:
        return JsonCheck(True, True, value)
    validator = jsonschema.validators.validator_for(schema)(schema)
    errors = [
        f"{'/'.join(str(p) for p in e.absolute_path) or '#'}: {e.message}"
        for e in validator.iter_errors(value)
    ]
    return JsonCheck(True, not errors, value, errors)
