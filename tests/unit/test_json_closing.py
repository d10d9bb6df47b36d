"""Budget-aware closing on hand-written partial outputs: every closing parses (issue 25).

No model here: a fake vocabulary with one token per byte stands in for the tokenizer.
The e2e tier (tests/e2e/test_json_closing_real.py) runs the same logic on the real model.
"""

from __future__ import annotations

import json
from typing import Any

import jsonschema
import pytest

from browser_llm.core.errors import ValidationError
from browser_llm.grammar.check import json_constraint
from browser_llm.grammar.closing import ClosingCatalog, JsonBudget
from browser_llm.grammar.gbnf import parse_gbnf
from browser_llm.grammar.json_schema import JSON_OBJECT_GBNF
from browser_llm.grammar.walk import GrammarWalker


class ByteVocab:
    """Token n is byte n: tokenizing is encoding, a piece is one byte."""

    n_vocab = 256

    def tokenize(self, text: str, add_special: bool, parse_special: bool = True) -> list[int]:
        return list(text.encode())

    def piece(self, token: int) -> bytes:
        return bytes([token])


class Sampler:
    def __init__(self, refuse: int | None = None) -> None:
        self.taken: list[int] = []
        self._refuse = refuse

    def force(self, token: int) -> bool:
        if token == self._refuse:
            return False
        self.taken.append(token)
        return True


PERSON: dict[str, Any] = {
    "type": "object",
    "properties": {
        "name": {"type": "string", "maxLength": 40},
        "age": {"type": "integer", "minimum": 0},
        "role": {"enum": ["admin", "user", "guest"]},
        "tags": {"type": "array", "items": {"type": "string"}, "maxItems": 3},
        "address": {
            "type": "object",
            "properties": {"city": {"type": "string"}, "zip": {"type": "string"}},
            "required": ["city"],
            "additionalProperties": False,
        },
        "born": {"type": "string", "format": "date"},
    },
    "required": ["name", "age", "role", "address"],
    "additionalProperties": False,
}


def _budget(grammar: str) -> JsonBudget:
    catalog = ClosingCatalog(ByteVocab())
    budget = catalog.budget(grammar)
    assert budget is not None
    return budget


def _close(grammar: str, prefix: bytes) -> bytes:
    """prefix + the closing the budget would force after it."""
    budget = _budget(grammar)
    step = budget.look(prefix)
    assert step is not None, prefix  # the grammar allows the prefix
    budget.take(step)
    tokens = budget.closing_tokens()
    assert tokens is not None, prefix
    return prefix + bytes(tokens)


@pytest.mark.parametrize(
    "prefix",
    [
        '{"a": "x\\',  # inside a string, right after a backslash
        '{"a": "x\\u00',  # inside a \u escape
        '{"a": "x\\"y',  # after an escaped quote
        '{"key"',  # after a key
        '{"key":',  # after the colon
        '{"a": 1,',  # after a comma in an object
        '{"a": [1, 2,',  # after a comma in an array
        '{"a": -',  # partial numbers
        '{"a": 1.',
        '{"a": 1e',
        '{"a": 12E+',
        '{"a": tr',  # partial literals
        '{"a": fals',
        '{"a": n',
        '{"a": {"b": [',  # nested
        '{\n  "a"',  # whitespace
        "",
    ],
)
def test_json_mode_closing_parses(prefix: str) -> None:
    text = _close(JSON_OBJECT_GBNF, prefix.encode())
    json.loads(text)
    assert text.startswith(prefix.encode())


def test_nested_ten_deep_closes() -> None:
    grammar = json_constraint(False, {"type": "array"})  # any JSON array, any depth
    assert grammar is not None
    prefix = '[{"a": ' * 5 + "[" * 5 + '"x'
    text = _close(grammar, prefix.encode())
    value = json.loads(text)
    for _ in range(5):
        value = value[0]["a"]
    assert value == [[[[["x"]]]]]


@pytest.mark.parametrize(
    ("char", "cut"), [("é", 1), ("€", 1), ("€", 2), ("🦙", 1), ("🦙", 2), ("🦙", 3)]
)
def test_partial_utf8_character_is_finished(char: str, cut: int) -> None:
    raw = char.encode()
    prefix = b'{"name": "' + raw[:cut]
    text = _close(JSON_OBJECT_GBNF, prefix)
    value = json.loads(text.decode())  # complete UTF-8 and JSON
    assert list(value) == ["name"]


def _cut_everywhere(document: str) -> list[bytes]:
    data = document.encode()
    return [data[:i] for i in range(len(data) + 1)]


def test_every_prefix_of_json_mode_documents_closes() -> None:
    documents = [
        '{"name": "Zoë \\"Z\\" \\u00e9", "n": -12.5e+3, "ok": true, "none": null}',
        '{\n  "list": [1, 2.0, "three", false, null],\n  "x": {"deep": [1]}\n}',
        '{"emoji": "🦙€", "empty": [], "e": ""}',
    ]
    for document in documents:
        for prefix in _cut_everywhere(document):
            json.loads(_close(JSON_OBJECT_GBNF, prefix).decode())


def test_every_prefix_of_a_schema_instance_closes_valid() -> None:
    grammar = json_constraint(False, PERSON)
    assert grammar is not None
    document = (
        '{"name": "Ana \\u00e9", "age": 42, "role": "guest", '
        '"address": {"city": "Porto", "zip": "4000"}, "tags": ["a", "b"], "born": "1999-12-31"}'
    )
    for prefix in _cut_everywhere(document):
        value = json.loads(_close(grammar, prefix).decode())
        jsonschema.validate(value, PERSON)


def test_required_properties_are_filled_with_shortest_values() -> None:
    grammar = json_constraint(False, PERSON)
    assert grammar is not None
    text = _close(grammar, b'{"name": "Bo"').decode()
    # The shortest enum value (ties: the first), 0 for a number, "" for a string.
    assert json.loads(text) == {"name": "Bo", "age": 0, "role": "user", "address": {"city": ""}}


def test_budget_refuses_a_token_whose_closing_no_longer_fits() -> None:
    budget = _budget(JSON_OBJECT_GBNF)
    assert budget.minimum() == 2  # "{}"
    assert budget.allows(b"{", room=1)  # "}" still fits after it
    assert not budget.allows(b'"', room=2)  # '"":0}' would not
    sampler = Sampler()
    tokens, whole = budget.force_closing(sampler)
    assert whole and bytes(sampler.taken) == b"}" == bytes(tokens)


def test_a_refused_closing_token_is_reported() -> None:
    budget = _budget(JSON_OBJECT_GBNF)
    assert budget.allows(b'{"a', room=100)
    tokens, whole = budget.force_closing(Sampler(refuse=ord(":")))
    assert not whole and bytes(tokens) == b'"'


def test_a_walk_that_loses_the_grammar_stops_closing() -> None:
    budget = _budget(JSON_OBJECT_GBNF)
    assert budget.allows(b"nope", room=0)  # not JSON: the walk gives up, nothing is forced
    assert budget.allows(b"}", room=0)


def test_max_tokens_below_the_shortest_instance_is_refused() -> None:
    grammar = json_constraint(False, PERSON)
    assert grammar is not None
    catalog = ClosingCatalog(ByteVocab())
    shortest = '{"name":"","age":0,"role":"user","address":{"city":""}}'
    catalog.check_budget(grammar, len(shortest))
    with pytest.raises(ValidationError) as err:
        catalog.check_budget(grammar, len(shortest) - 1)
    assert err.value.details is not None
    assert err.value.details["minimum"] == len(shortest)
    assert err.value.details["field"] == "max_tokens"


def test_walkers_are_shared_per_grammar() -> None:
    catalog = ClosingCatalog(ByteVocab())
    assert catalog.walker(JSON_OBJECT_GBNF) is catalog.walker(JSON_OBJECT_GBNF)
    assert catalog.walker("root ::= undefined-rule") is None  # no closing, no failure


def test_walk_matches_the_grammar_text_it_was_built_from() -> None:
    walker = GrammarWalker(parse_gbnf(JSON_OBJECT_GBNF))
    deep = '{"a": {"b": {"c": 1}}}'
    state = walker.walk(walker.initial, deep)
    assert state is not None and state.accepting
    # JSON mode bounds depth to 3 objects: a fourth level is not allowed.
    assert walker.walk(walker.initial, '{"a": {"b": {"c": {') is None


PRETTY_PERSON = (
    '{\n  "name": "Ana",\n  "age": 42,\n  "role": "guest",\n  "address": {\n'
    '    "city": "Porto",\n    "zip": "4000"\n  },\n  "tags": [\n    "a",\n\n\t"b"\n  ]\n}'
)


def test_every_prefix_of_a_pretty_printed_instance_closes_valid() -> None:
    # llama.cpp's whitespace (newlines, indentation) is allowed everywhere it allows it, and
    # a closing forced in the middle of it still parses and validates (issue 36).
    grammar = json_constraint(False, PERSON)
    assert grammar is not None
    for prefix in _cut_everywhere(PRETTY_PERSON):
        value = json.loads(_close(grammar, prefix).decode())
        jsonschema.validate(value, PERSON)
    for prefix in _cut_everywhere(PRETTY_PERSON):
        json.loads(_close(JSON_OBJECT_GBNF, prefix).decode())


@pytest.mark.parametrize("grammar_kind", ["schema", "json_mode"])
def test_the_shortest_closing_takes_no_optional_whitespace(grammar_kind: str) -> None:
    grammar = json_constraint(False, PERSON) if grammar_kind == "schema" else JSON_OBJECT_GBNF
    assert grammar is not None
    compact, pretty = _budget(grammar), _budget(grammar)
    assert compact.allows(b'{"name":"A"', room=1000)
    assert pretty.allows(b'{\n  "name": "A"', room=1000)
    closing = compact.closing_tokens()
    assert closing is not None and pretty.closing_tokens() == closing
    assert not any(chr(t).isspace() for t in closing)
    # ... and in the middle of an indentation, the closing only finishes the value.
    assert pretty.allows(b",\n\t  ", room=1000)
    rest = pretty.closing_tokens()
    assert rest is not None and not any(chr(t).isspace() for t in rest)


@pytest.mark.parametrize(
    ("bounds", "value"),
    [({"minimum": 1}, 1), ({"minimum": 37, "maximum": 4521}, 37), ({"maximum": -3}, -3)],
)
def test_a_bounded_integer_closes_with_its_shortest_value(
    bounds: dict[str, int], value: int
) -> None:
    schema = {
        "type": "object",
        "properties": {"n": {"type": "integer", **bounds}},
        "required": ["n"],
    }
    grammar = json_constraint(False, schema)
    assert grammar is not None
    assert json.loads(_close(grammar, b"{").decode()) == {"n": value}
