"""A JSON schema -> the part of it a grammar can enforce (the input of llama.cpp's converter).

Keywords the converter understands pass through; some others become grammar the
converter can express (integer bounds, and `minimum: 0` on a number, become a placeholder
that is swapped for a grammar rule of our own). Everything
else (`multipleOf`, `uniqueItems`, `not`, `if`/`then`/`else`, `patternProperties`,
unanchored patterns, ...) is left out of the grammar and checked on the finished
output (grammar/check.py), so `json.valid` tells the truth.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable
from typing import Any

from browser_llm.grammar.gbnf import GrammarSyntaxError, parse_gbnf
from browser_llm.grammar.integer_range import integer_range_rule

__all__ = ["reduce_schema", "substitute_placeholders"]

_PASSED = {
    "type",
    "properties",
    "required",
    "additionalProperties",
    "items",
    "prefixItems",
    "minItems",
    "maxItems",
    "enum",
    "const",
    "anyOf",
    "oneOf",
    "allOf",
    "$ref",
    "format",
    "minLength",
    "maxLength",
}
_SCHEMA_MAPS = {"properties", "$defs", "definitions"}
_SCHEMA_LISTS = {"anyOf", "oneOf", "allOf", "prefixItems"}
# Keywords that decide a value's shape for the converter; a node with none is any value.
_SHAPING = _PASSED - {"required", "minItems", "maxItems", "minLength", "maxLength"} | {"pattern"}
# Any JSON value (the converter reads an empty schema as "an object").
ANY_VALUE: dict[str, Any] = {"type": ["object", "array", "string", "number", "boolean", "null"]}
# Length and item bounds up to this stay in the grammar. The converter writes a bound as
# that many nested rules: llama.cpp refused maxLength 1024 and hung on Claude Code's
# `maxLength: 524288` (a 4 MB grammar); larger bounds are checked on the output instead.
_MAX_REPEAT = 256
_REPEAT_BOUNDS = {"minLength", "maxLength", "minItems", "maxItems"}

# Bounds the converter drops become a placeholder constant, swapped for a grammar rule of
# our own by substitute_placeholders (the whitespace after the value stays the constant's).
_PLACEHOLDER = re.compile(r'"\\"BLLM_(INTEGER|NONNEGATIVE_NUMBER)(?::(-?\d*):(-?\d*))?\\""')
_NONNEGATIVE_NUMBER = '("0" | [1-9] [0-9]{0,15}) ("." [0-9]{1,15})? ([eE] [-+]? [0-9]{1,3})?'
_MAX_INTEGER_BOUND = 10**15  # integers have at most 16 digits in the grammar
_SHORTHANDS = {"d": "0-9", "w": "a-zA-Z0-9_", "s": " \\t\\n\\r"}
_GBNF_ESCAPES = set('xuUtrn\\"[]')


def reduce_schema(node: Any, pattern_grammar: Callable[[str], str]) -> Any:
    """The grammar's share of a schema; pattern_grammar converts a one-pattern schema."""
    if isinstance(node, bool):
        return dict(ANY_VALUE)  # true: anything; false: nothing can match (reported after)
    if not isinstance(node, dict):
        return node
    kinds = node.get("type")
    if isinstance(kinds, list) and kinds and not {"$ref", "anyOf", "oneOf"} & node.keys():
        return _split_types(node, kinds, pattern_grammar)
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key in _SCHEMA_MAPS and isinstance(value, dict):
            out[key] = {k: reduce_schema(v, pattern_grammar) for k, v in value.items()}
        elif key in _SCHEMA_LISTS and isinstance(value, list):
            out[key] = [reduce_schema(v, pattern_grammar) for v in value]
        elif key in ("items", "additionalProperties") and isinstance(value, dict):
            out[key] = reduce_schema(value, pattern_grammar)
        elif key == "items" and value is False:
            out["maxItems"] = 0
        elif key == "pattern" and isinstance(value, str):
            pattern = _grammar_pattern(value, pattern_grammar)
            if pattern is not None:
                out[key] = pattern
        elif key in _REPEAT_BOUNDS and isinstance(value, int) and value > _MAX_REPEAT:
            continue
        elif key in _PASSED:
            out[key] = value
    # patternProperties: keys the grammar cannot tell apart, so any key (checked after).
    extra = out.get("additionalProperties")
    if extra is True or ("patternProperties" in node and extra is not False):
        out["additionalProperties"] = dict(ANY_VALUE)
    _bound_numbers(node, out)
    if not _SHAPING & out.keys():
        out.update(ANY_VALUE)
    return out


def _split_types(
    node: dict[str, Any], kinds: list[Any], pattern_grammar: Callable[[str], str]
) -> Any:
    """{"type": [a, b], ...} as {"anyOf": [{"type": a, ...}, {"type": b, ...}]}: the converter
    reads a type list as any a or any b and drops the other keywords (properties, maxLength,
    bounds: {"type": ["object", "null"], "properties": ...} became any object); llama.cpp
    keeps them in each alternative."""
    if len(kinds) == 1:
        return reduce_schema({**node, "type": kinds[0]}, pattern_grammar)
    defs = {k: node[k] for k in ("$defs", "definitions") if k in node}  # refs point at them
    rest = {k: v for k, v in node.items() if k not in defs}
    out: dict[str, Any] = {
        k: reduce_schema({"$defs": v}, pattern_grammar)["$defs"] for k, v in defs.items()
    }
    out["anyOf"] = [reduce_schema({**rest, "type": kind}, pattern_grammar) for kind in kinds]
    return out


def _bound_numbers(node: dict[str, Any], out: dict[str, Any]) -> None:
    kind = node.get("type")
    if kind not in ("integer", "number") or "enum" in out or "const" in out:
        return
    low, high = _bounds(node)
    if kind == "integer":  # any bounds, as llama.cpp (integer_range.py)
        lo, hi = _integer_bound(low, math.ceil), _integer_bound(high, math.floor)
        if (lo is None and hi is None) or (lo is not None and hi is not None and lo > hi):
            return  # nothing to enforce, or nothing fits (reported on the output)
        out["const"] = f"BLLM_INTEGER:{'' if lo is None else lo}:{'' if hi is None else hi}"
    elif low is not None and low >= 0:  # llama.cpp bounds no numbers; a sign we can
        out["const"] = "BLLM_NONNEGATIVE_NUMBER"


def _integer_bound(bound: float | None, to_int: Callable[[float], int]) -> int | None:
    if bound is None or abs(bound) > _MAX_INTEGER_BOUND:
        return None
    return to_int(bound)


def substitute_placeholders(grammar: str) -> str:
    """The converter's grammar with the placeholders' own rules in place of the constants."""

    def rule(match: re.Match[str]) -> str:
        if match[1] == "INTEGER":
            low, high = (int(g) if g else None for g in (match[2], match[3]))
            return f"({integer_range_rule(low, high)})"
        return f"({_NONNEGATIVE_NUMBER})"

    return _PLACEHOLDER.sub(rule, grammar)


def _bounds(node: dict[str, Any]) -> tuple[float | None, float | None]:
    """The inclusive range of a number schema (None: unbounded on that side)."""

    def number(key: str) -> float | None:
        value = node.get(key)
        if isinstance(value, bool) or not isinstance(value, int | float):
            return None
        return float(value)

    low, high = number("minimum"), number("maximum")
    ex_low, ex_high = number("exclusiveMinimum"), number("exclusiveMaximum")
    integer = node.get("type") == "integer"
    if ex_low is not None:
        ex_low = math.floor(ex_low) + 1 if integer else math.nextafter(ex_low, math.inf)
        low = ex_low if low is None else max(low, ex_low)
    if ex_high is not None:
        ex_high = math.ceil(ex_high) - 1 if integer else math.nextafter(ex_high, -math.inf)
        high = ex_high if high is None else min(high, ex_high)
    return low, high


def _grammar_pattern(pattern: str, pattern_grammar: Callable[[str], str]) -> str | None:
    """The pattern in the converter's dialect, or None when a grammar cannot hold it."""
    # JSON Schema patterns match anywhere: only a fully anchored one is a whole-string shape.
    if not (pattern.startswith("^") and pattern.endswith("$")) or pattern.endswith("\\$"):
        return None
    rewritten = _expand_shorthands(pattern)
    if rewritten is None:
        return None
    try:
        grammar = pattern_grammar(json.dumps({"type": "string", "pattern": rewritten}))
        parse_gbnf(grammar)
    except (AssertionError, KeyError, ValueError, TypeError, IndexError, GrammarSyntaxError):
        return None
    escapes = re.findall(r"\\(.)", grammar)
    return rewritten if set(escapes) <= _GBNF_ESCAPES else None


def _expand_shorthands(pattern: str) -> str | None:
    """\\d, \\w, \\s as the bracket classes the converter understands (None: \\D, \\b...)."""
    out = []
    in_class = False
    i = 0
    while i < len(pattern):
        c = pattern[i]
        if c == "\\" and i + 1 < len(pattern):
            e = pattern[i + 1]
            if e in _SHORTHANDS:
                out.append(_SHORTHANDS[e] if in_class else f"[{_SHORTHANDS[e]}]")
            elif e.isalnum():
                return None  # \D, \W, \S, \b, back references: not expressible here
            else:
                out.append(pattern[i : i + 2])
            i += 2
            continue
        if c == "[":
            in_class = True
        elif c == "]":
            in_class = False
        out.append(c)
        i += 1
    return "".join(out)
