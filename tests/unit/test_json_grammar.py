"""JSON schema -> grammar: what is enforced, what is refused, and the output check."""

from __future__ import annotations

import pytest

from browser_llm.core.errors import ValidationError
from browser_llm.grammar.check import check_json_output, json_constraint
from browser_llm.grammar.json_schema import MAX_SCHEMA_DEPTH, grammar_for


def test_json_mode_uses_the_generic_json_grammar() -> None:
    grammar = grammar_for(True, None)
    assert grammar is not None and "root" in grammar
    assert grammar_for(False, None) is None


def test_supported_schema_compiles() -> None:
    schema = {
        "type": "object",
        "title": "Person",
        "properties": {
            "name": {"type": "string", "minLength": 1},
            "kind": {"enum": ["a", "b"]},
            "tags": {"type": "array", "items": {"type": "string"}, "maxItems": 2},
            "ref": {"$ref": "#/$defs/thing"},
        },
        "required": ["name"],
        "$defs": {"thing": {"type": "integer"}},
    }
    grammar = json_constraint(False, schema)
    assert grammar is not None and "kind" in grammar


@pytest.mark.parametrize(
    "schema",
    [
        {"type": "array", "uniqueItems": True},
        {"properties": {"x": {"type": "number", "multipleOf": 2}}},
        {"if": {}, "then": {}},
        {"type": "object", "patternProperties": {"^a": {}}},
        {"not": {"type": "string"}},
        {"type": "integer", "minimum": 3, "exclusiveMaximum": 10},
    ],
)
def test_keywords_a_grammar_cannot_enforce_are_accepted(schema: dict[str, object]) -> None:
    # Checked on the finished output instead (issue 22 item 4).
    assert json_constraint(False, schema) is not None


def test_invalid_schema_is_refused_with_its_path() -> None:
    with pytest.raises(ValidationError, match="not a valid JSON Schema"):
        json_constraint(False, {"type": "object", "properties": {"a": {"type": 5}}})


def test_remote_ref_is_refused() -> None:
    with pytest.raises(ValidationError, match=r"\$ref"):
        json_constraint(False, {"$ref": "https://example.com/schema.json"})


def test_depth_and_size_are_bounded() -> None:
    deep: dict[str, object] = {"type": "string"}
    for _ in range(MAX_SCHEMA_DEPTH + 2):
        deep = {"type": "array", "items": deep}
    with pytest.raises(ValidationError, match="deeper"):
        json_constraint(False, deep)
    huge = {"enum": ["x" * 100] * 500}
    with pytest.raises(ValidationError, match="bytes"):
        json_constraint(False, huge)


def test_output_check_reports_value_and_errors() -> None:
    schema = {"type": "object", "properties": {"n": {"type": "integer"}}, "required": ["n"]}
    good = check_json_output('{"n": 3}', schema)
    assert (good.complete, good.valid, good.value, good.errors) == (True, True, {"n": 3}, [])
    wrong = check_json_output('{"n": "3"}', schema)
    assert wrong.complete and not wrong.valid and "n" in wrong.errors[0]
    cut = check_json_output('{"n": ', schema)
    assert not cut.complete and not cut.valid and cut.errors


def test_schema_strings_refuse_raw_control_characters() -> None:
    # The converter's string rule lets a raw newline into a string: JSON does not parse it.
    from browser_llm.grammar.gbnf import parse_gbnf
    from browser_llm.grammar.walk import GrammarWalker

    grammar = json_constraint(False, {"type": "object", "properties": {"a": {"type": "string"}}})
    assert grammar is not None
    walker = GrammarWalker(parse_gbnf(grammar))
    assert walker.walk(walker.initial, '{"a": "x') is not None
    assert walker.walk(walker.initial, '{"a": "x\n') is None


def test_integer_ranges_and_patterns_reach_the_grammar() -> None:
    from browser_llm.grammar.gbnf import parse_gbnf
    from browser_llm.grammar.walk import GrammarWalker

    def accepts(schema: dict[str, object], text: str) -> bool:
        grammar = json_constraint(False, schema)
        assert grammar is not None
        walker = GrammarWalker(parse_gbnf(grammar))
        state = walker.walk(walker.initial, text)
        return state is not None and state.accepting

    assert accepts({"type": "integer", "minimum": 1, "maximum": 5}, "5")
    assert not accepts({"type": "integer", "minimum": 1, "maximum": 5}, "6")
    assert not accepts({"type": "integer", "minimum": 0}, "-1")
    assert accepts({"type": "integer", "exclusiveMinimum": 0}, "7")
    assert not accepts({"type": "integer", "exclusiveMinimum": 0}, "0")
    assert not accepts({"type": "number", "minimum": 0}, "-0.5")
    code = {"type": "string", "pattern": "^[A-Z]{2}-\\d{3}$"}
    assert accepts(code, '"AB-123"') and not accepts(code, '"AB-12x"')
    # Unanchored patterns are not a whole-string shape: checked on the output only.
    assert accepts({"type": "string", "pattern": "[a-z]"}, '"123"')


def test_large_length_bounds_stay_out_of_the_grammar() -> None:
    """A bound is that many nested grammar rules: Claude Code's Workflow tool sends
    `maxLength: 524288` (a 4 MB grammar llama.cpp never finished reading). Small bounds
    stay in the grammar; large ones are checked on the output."""
    small = json_constraint(False, {"type": "string", "maxLength": 40})
    huge = json_constraint(False, {"type": "string", "maxLength": 524288})
    many = json_constraint(False, {"type": "array", "items": {"type": "integer"}, "maxItems": 5000})
    assert small is not None and small.count(")?") >= 39  # 40 nested optional characters
    assert huge is not None and len(huge) < 2000
    assert many is not None and len(many) < 2000
    check = check_json_output('"' + "a" * 20 + '"', {"type": "string", "minLength": 300})
    assert not check.valid  # the dropped bound is still checked on the output
