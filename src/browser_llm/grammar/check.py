"""JSON mode on the service side: the constraint for a request, and the check of its output."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import jsonschema
from jsonschema.exceptions import SchemaError

from browser_llm.core.errors import ValidationError
from browser_llm.core.text import has_lone_surrogate, has_non_finite_number, json_depth
from browser_llm.grammar.json_schema import SchemaField, grammar_for

__all__ = ["MAX_JSON_DEPTH", "JsonCheck", "SchemaField", "check_json_output", "json_constraint"]

# JSON levels in a schema; its 16 schema levels (grammar/json_schema.py) need at most ~48.
MAX_JSON_DEPTH = 64


def json_constraint(
    json_mode: bool, schema: dict[str, Any] | None, where: SchemaField | None = None
) -> str | None:
    """The grammar a request's output must follow; 400 for a schema that cannot be enforced,
    naming the request field the schema came from (`where`)."""
    where = where or SchemaField()
    if schema is not None:
        if has_lone_surrogate(schema) or has_non_finite_number(schema):
            raise ValidationError(
                f"{where.name} must be plain JSON (no lone surrogates, NaN or infinities)",
                {"field": where.field},
            )
        # Bounded before jsonschema walks it: its checks recurse, and a deep schema
        # would raise RecursionError (a 500) instead of a 400.
        if json_depth(schema) > MAX_JSON_DEPTH:
            raise ValidationError(
                f"{where.name} is nested deeper than {MAX_JSON_DEPTH} JSON levels",
                {"field": where.field},
            )
        try:
            jsonschema.validators.validator_for(schema).check_schema(schema)
        except RecursionError as exc:
            raise ValidationError(
                f"{where.name} is nested too deeply", {"field": where.field}
            ) from exc
        except SchemaError as exc:
            at = "/".join(str(p) for p in exc.absolute_path) or "#"
            raise ValidationError(
                f"{where.name} is not a valid JSON Schema at {at}: {exc.message}",
                {"field": where.field, "path": at},
            ) from exc
    return grammar_for(json_mode, schema, where)


@dataclass(frozen=True)
class JsonCheck:
    """What came out: complete (parses), valid (matches the schema), the value, the errors."""

    complete: bool
    valid: bool
    value: Any = None
    errors: list[str] = field(default_factory=list)


def _not_json(name: str) -> Any:
    # Python's json reads NaN and Infinity; JSON has neither.
    raise json.JSONDecodeError(f"{name} is not JSON", name, 0)


def check_json_output(text: str, schema: dict[str, Any] | None) -> JsonCheck:
    try:
        value = json.loads(text, parse_constant=_not_json)
    except json.JSONDecodeError as exc:
        return JsonCheck(False, False, None, [f"incomplete or invalid JSON: {exc.msg}"])
    if schema is None:
        return JsonCheck(True, True, value)
    # Formats are checked too (date, date-time, email, uuid, ...; those whose checker needs
    # a library that is not installed pass unchecked): a grammar enforces only some.
    cls = jsonschema.validators.validator_for(schema)
    validator = cls(schema, format_checker=cls.FORMAT_CHECKER)
    errors = [
        f"{'/'.join(str(p) for p in e.absolute_path) or '#'}: {e.message}"
        for e in validator.iter_errors(value)
    ]
    return JsonCheck(True, not errors, value, errors)
