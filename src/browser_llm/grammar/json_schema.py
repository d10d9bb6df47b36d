"""JSON mode and JSON schema -> a GBNF grammar that llama.cpp can enforce.

Any valid schema is accepted. The grammar enforces what it can (grammar/schema_reduce.py
says which part); the rest is checked on the finished output and reported in the
response's `json` block. Malformed schemas (unknown types, remote $ref, too deep or
too big, or not valid JSON Schema: grammar/check.py) are refused with a 400.
"""

from __future__ import annotations

import functools
import importlib.util
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from browser_llm.core.errors import ValidationError
from browser_llm.grammar.additional_keys import converter_with_key_exclusion
from browser_llm.grammar.schema_reduce import reduce_schema, substitute_placeholders

__all__ = [
    "JSON_OBJECT_GBNF",
    "JSON_WS",
    "MAX_SCHEMA_BYTES",
    "MAX_SCHEMA_DEPTH",
    "SchemaField",
    "grammar_for",
]

# The whitespace of every JSON grammar here, and where it goes: llama.cpp's own
# (common/json-schema-to-grammar.cpp): after "{", "[", ":" and ",", and before "}" and "]"
# (a key may have it before its ":"); never after a value before a ",", nor after the whole
# value. Small models learned JSON pretty-printed: a grammar that forbids the newline after
# "{" pushes them off what they learned and they loop (issue 36). Bounded, so a model
# cannot run away in whitespace; the shortest closing takes the empty choice.
JSON_WS = '| " " | "\\n"{1,2} [ \\t]{0,20}'

# JSON mode: one JSON object. Depth, members, strings, numbers and whitespace
# are bounded so that a small model stuck repeating itself ("1222222...",
# {"a": {"a": {...}}}) is forced to close what it opened instead of running
# to max_tokens.
_MAX_DEPTH = 3
_MAX_MEMBERS = 8


def _json_object_grammar() -> str:
    more = f"{{0,{_MAX_MEMBERS - 1}}}"
    rules = ["root ::= obj0"]
    for level in range(_MAX_DEPTH):
        nxt = f"val{level + 1}"
        rules += [
            f'obj{level} ::= "{{" ws ( mem{level} ("," ws mem{level}){more} )? ws "}}"',
            f'mem{level} ::= string ws ":" ws {nxt}',
            f'arr{level} ::= "[" ws ( {nxt} ("," ws {nxt}){more} )? ws "]"',
            f"val{level + 1} ::= "
            + (f"obj{level + 1} | arr{level + 1} | scalar" if level + 1 < _MAX_DEPTH else "scalar"),
        ]
    rules += [
        'scalar ::= string | number | "true" | "false" | "null"',
        'string ::= "\\"" char{0,100} "\\""',
        'char ::= [^"\\\\\\x7F\\x00-\\x1F] | "\\\\" (["\\\\/bfnrt] | "u" [0-9a-fA-F]{4})',
        'number ::= "-"? ("0" | [1-9] [0-9]{0,15}) ("." [0-9]{1,15})? ([eE] [-+]? [0-9]{1,3})?',
        f"ws ::= {JSON_WS}",
    ]
    return "\n".join(rules) + "\n"


JSON_OBJECT_GBNF = _json_object_grammar()

MAX_SCHEMA_BYTES = 32_768
MAX_SCHEMA_DEPTH = 16

_SCHEMA_MAPS = {"properties", "$defs", "definitions", "patternProperties", "dependentSchemas"}
_SCHEMA_LISTS = {"anyOf", "oneOf", "allOf", "prefixItems"}
_SCHEMA_VALUES = {"items", "additionalProperties", "not", "if", "then", "else", "contains"}
_CONVERTER_CHAR = 'char ::= [^"\\\\] |'
_JSON_CHAR = 'char ::= [^"\\\\\\x7F\\x00-\\x1F] |'
_CONVERTER_DOT = "dot ::= [^\\x0A\\x0D]"
_JSON_DOT = 'dot ::= [^"\\\\\\x7F\\x00-\\x1F] | "\\\\" (["\\\\/bfnrt] | "u" [0-9a-fA-F]{4})'
_TYPES = {"object", "array", "string", "number", "integer", "boolean", "null"}


@dataclass(frozen=True)
class SchemaField:
    """Where a schema came from in the request, as its errors name it: `name` starts the
    message ("format", "tools: a function's parameters") and `field` goes in details."""

    name: str = "json_schema"
    field: str = "json_schema"


def _check(node: Any, path: str, depth: int, where: SchemaField) -> None:
    if depth > MAX_SCHEMA_DEPTH:
        raise ValidationError(
            f"{where.name} is nested deeper than {MAX_SCHEMA_DEPTH} levels at {path}",
            {"field": where.field, "path": path},
        )
    if isinstance(node, bool):
        return
    if not isinstance(node, dict):
        raise ValidationError(
            f"{where.name}: {path} must be an object", {"field": where.field, "path": path}
        )
    for key, value in node.items():
        at = f"{path}/{key}"
        if key == "type":
            kinds = value if isinstance(value, list) else [value]
            unknown = [k for k in kinds if k not in _TYPES]
            if unknown:
                raise ValidationError(
                    f"{where.name}: unknown type {unknown[0]!r} at {path}",
                    {"field": where.field, "path": path},
                )
        elif key in _SCHEMA_MAPS and isinstance(value, dict):
            for name, sub in value.items():
                _check(sub, f"{at}/{name}", depth + 1, where)
        elif key in _SCHEMA_LISTS and isinstance(value, list):
            for i, sub in enumerate(value):
                _check(sub, f"{at}/{i}", depth + 1, where)
        elif key in _SCHEMA_VALUES and isinstance(value, dict | bool):
            _check(value, at, depth + 1, where)
        elif key == "$ref" and not (isinstance(value, str) and value.startswith("#")):
            raise ValidationError(
                f"{where.name}: only local $ref ('#/...') is allowed, at {path}",
                {"field": where.field, "path": path},
            )


def grammar_for(
    json_mode: bool, schema: dict[str, Any] | None, where: SchemaField | None = None
) -> str | None:
    """The GBNF for a request, or None when its output is free text."""
    if schema is None:
        return JSON_OBJECT_GBNF if json_mode else None
    where = where or SchemaField()
    text = json.dumps(schema)
    if len(text) > MAX_SCHEMA_BYTES:
        raise ValidationError(
            f"{where.name} is {len(text)} bytes; at most {MAX_SCHEMA_BYTES}",
            {"field": where.field},
        )
    _check(schema, "#", 0, where)
    convert = _schema_converter()
    try:
        grammar = str(convert(json.dumps(reduce_schema(schema, convert))))
    except (AssertionError, KeyError, ValueError, TypeError, RecursionError) as exc:
        raise ValidationError(
            f"{where.name} cannot be compiled to a grammar: {exc or type(exc).__name__}",
            {"field": where.field},
        ) from exc
    grammar = substitute_placeholders(grammar)  # rules of our own (grammar/schema_reduce.py)
    # This converter's string character takes raw control characters (a newline inside a
    # string), which JSON forbids: the answer would not parse. So does a pattern's "." (in
    # llama.cpp's too), and a raw quote: it ended the string where the pattern went on.
    grammar = grammar.replace(_CONVERTER_CHAR, _JSON_CHAR).replace(_CONVERTER_DOT, _JSON_DOT)
    return _llama_cpp_whitespace(grammar)


_GBNF_TOKEN = re.compile(r'"(?:[^"\\]|\\.)*"|\[(?:[^\]\\]|\\.)*\]|[\w-]+|\{[^}]*\}|\S')


def _llama_cpp_whitespace(grammar: str) -> str:
    """The converter's grammar with llama.cpp's whitespace (JSON_WS) where llama.cpp puts it.

    The Python port puts its `space` after every value (so before "," too, and after the
    whole answer) and allows only one space. Here every value loses its trailing `space`,
    and the "}" or "]" that closes an object or array gains one in front.
    """
    rules = []
    for line in grammar.splitlines():
        name, sep, body = line.partition(" ::= ")
        if not sep:
            rules.append(line)
            continue
        if name == "space":
            rules.append(f"space ::= {JSON_WS}")
            continue
        alternatives: list[list[str]] = [[]]
        depth = 0
        for token in _GBNF_TOKEN.findall(body):
            depth += token == "("
            depth -= token == ")"
            if token == "|" and depth == 0:
                alternatives.append([])
            else:
                alternatives[-1].append(token)
        for alt in alternatives:
            if alt and alt[-1] == "space":
                alt.pop()
            if alt and alt[0] in ('"{"', '"["') and alt[-1] in ('"}"', '"]"'):
                alt.insert(len(alt) - 1, "space")
                if alt[-3] == "space":  # an empty object: one gap, not two
                    del alt[-3]
        rules.append(f"{name} ::= " + " | ".join(_join(alt) for alt in alternatives))
    return "\n".join(rules) + "\n"


def _join(tokens: list[str]) -> str:
    text = ""
    for token in tokens:
        glued = token in ("*", "+", "?", ")") or token.startswith("{") or text.endswith("(")
        text += token if glued or not text else f" {token}"
    return text


@functools.cache
def _schema_converter() -> Callable[[str], str]:
    """llama-cpp-python's JSON schema -> GBNF converter, loaded from its file (extra keys
    exclude the declared names: grammar/additional_keys.py).

    The converter is plain Python, but importing it as ``llama_cpp.llama_grammar`` runs
    the package's ``__init__``, which loads llama.cpp's native library: the server
    process must never do that (llama.cpp lives in the engine process).
    """
    package = importlib.util.find_spec("llama_cpp")  # locates without importing
    if package is None or not package.submodule_search_locations:
        raise ImportError("llama-cpp-python is not installed")
    path = Path(next(iter(package.submodule_search_locations))) / "llama_grammar.py"
    spec = importlib.util.spec_from_file_location("browser_llm_llama_grammar", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return converter_with_key_exclusion(module)
