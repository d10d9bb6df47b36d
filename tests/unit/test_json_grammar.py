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


# ---- one whitespace rule for every JSON grammar (issue 36) ----------------------------

RECIPE: dict[str, object] = {
    "type": "object",
    "properties": {
        "name": {"type": "string"},
        "kind": {"enum": ["sweet", "savoury"]},
        "serves": {"type": "integer", "minimum": 1, "maximum": 12},
        "ingredients": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {"name": {"type": "string"}, "amount": {"type": "number"}},
                "required": ["name", "amount"],
            },
        },
        "notes": {"type": "string", "format": "date"},
    },
    "required": ["name", "kind", "serves", "ingredients"],
}
PRETTY = (
    '{\n  "name": "Pancakes",\n  "kind": "sweet",\n  "serves": 4,\n  "ingredients": [\n'
    '    {\n      "name": "milk",\n      "amount": 0.5\n    },\n'
    '\t\t{"name" : "egg", "amount": 2}\n  ]\n}'
)


def _grammars() -> dict[str, str]:
    schema_grammar = json_constraint(False, RECIPE)
    assert schema_grammar is not None
    mode = grammar_for(True, None)
    assert mode is not None
    return {"schema": schema_grammar, "json_mode": mode}


def _accepts_text(grammar: str, text: str) -> bool:
    from browser_llm.grammar.gbnf import parse_gbnf
    from browser_llm.grammar.walk import GrammarWalker

    walker = GrammarWalker(parse_gbnf(grammar))
    state = walker.walk(walker.initial, text)
    return state is not None and state.accepting


def test_every_json_grammar_has_llama_cpps_whitespace_rule_once() -> None:
    from browser_llm.grammar.json_schema import JSON_WS

    assert JSON_WS == '| " " | "\\n"{1,2} [ \\t]{0,20}'  # common/json-schema-to-grammar.cpp
    for grammar in _grammars().values():
        ws_rules = [line for line in grammar.splitlines() if line.endswith(JSON_WS)]
        assert len(ws_rules) == 1
        assert '" "?' not in grammar  # the Python port's own rule is gone


@pytest.mark.parametrize("kind", ["schema", "json_mode"])
def test_pretty_printed_json_is_accepted(kind: str) -> None:
    grammar = _grammars()[kind]
    assert _accepts_text(grammar, PRETTY)
    compact = '{"name":"P","kind":"savoury","serves":12,"ingredients":[]}'
    assert _accepts_text(grammar, compact)


@pytest.mark.parametrize(
    "text",
    [
        '{"name": "P" , "kind": "sweet", "serves": 1, "ingredients": []}',  # before ","
        '{"name": "P", "kind": "sweet", "serves": 1, "ingredients": []}\n',  # after the end
        '{\n\n\n"name": "P", "kind": "sweet", "serves": 1, "ingredients": []}',  # 3 newlines
        "{\n" + " " * 21 + '"name": "P", "kind": "sweet", "serves": 1, "ingredients": []}',
        '{  "name": "P", "kind": "sweet", "serves": 1, "ingredients": []}',  # two spaces
    ],
)
def test_whitespace_goes_where_llama_cpp_puts_it_and_is_bounded(text: str) -> None:
    for grammar in _grammars().values():
        assert not _accepts_text(grammar, text)


def test_enum_and_const_values_take_whitespace_before_the_closing_brace() -> None:
    # The Python port left no whitespace after an enum value: `"sweet"\n}` was refused.
    schema = {"type": "object", "properties": {"s": {"enum": ["a", "b"]}, "c": {"const": 1}}}
    grammar = json_constraint(False, schema)
    assert grammar is not None
    assert _accepts_text(grammar, '{\n  "s": "a"\n}')
    assert _accepts_text(grammar, '{\n  "c": 1\n}')


def test_hermes_tool_calls_take_pretty_printed_arguments() -> None:
    from browser_llm.service.tools.generic import ToolPlan
    from browser_llm.service.tools.hermes import hermes_grammar

    assert ToolPlan is not None  # the grammar only needs a call grammar and the plan's mode

    class Plan:
        parallel = False
        mode = "required"

    call = json_constraint(
        False,
        {
            "type": "object",
            "properties": {
                "name": {"const": "weather"},
                "arguments": {
                    "type": "object",
                    "properties": {"city": {"type": "string"}},
                    "required": ["city"],
                },
            },
            "required": ["name", "arguments"],
        },
    )
    assert call is not None
    grammar = hermes_grammar(Plan(), call)  # type: ignore[arg-type]
    text = (
        '<tool_call>\n{\n  "name": "weather",\n  "arguments": {\n    "city": "Oslo"\n  }\n}'
        "\n</tool_call>"
    )
    assert _accepts_text(grammar, text)


# ---- the converter's drift from llama.cpp's C++ one (issue 36 item 2) -------------------


@pytest.mark.parametrize(
    ("bounds", "inside", "outside"),
    [
        ({"minimum": 1, "maximum": 1000}, ["1", "999", "1000"], ["0", "1001", "-1", "01"]),
        ({"minimum": -5, "maximum": 5}, ["-5", "0", "5"], ["-6", "6"]),
        ({"minimum": -20}, ["-20", "0", "123456"], ["-21", "-100"]),
        ({"maximum": 100}, ["-7", "0", "100"], ["101", "1000"]),
        ({"maximum": -3}, ["-3", "-1000"], ["-2", "0", "5"]),
        ({"exclusiveMinimum": 10, "exclusiveMaximum": 300}, ["11", "299"], ["10", "300"]),
    ],
)
def test_integer_bounds_of_any_width_reach_the_grammar(
    bounds: dict[str, int], inside: list[str], outside: list[str]
) -> None:
    # The Python port ignores integer bounds; llama.cpp turns any bounds into a grammar.
    grammar = json_constraint(False, {"type": "integer", **bounds})
    assert grammar is not None
    for text in inside:
        assert _accepts_text(grammar, text), text
    for text in outside:
        assert not _accepts_text(grammar, text), text


def test_a_type_list_keeps_the_other_keywords() -> None:
    # The port read {"type": [a, b], ...} as any a or any b; llama.cpp keeps the keywords.
    schema = {
        "type": "object",
        "properties": {
            "who": {
                "type": ["object", "null"],
                "properties": {"n": {"type": ["integer", "null"], "minimum": 1, "maximum": 3}},
                "required": ["n"],
                "additionalProperties": False,
            },
            "tag": {"type": ["string", "null"], "maxLength": 2},
        },
        "required": ["who", "tag"],
        "additionalProperties": False,
    }
    grammar = json_constraint(False, schema)
    assert grammar is not None
    assert _accepts_text(grammar, '{"who": {"n": 3}, "tag": "ab"}')
    assert _accepts_text(grammar, '{"who": null, "tag": null}')
    assert _accepts_text(grammar, '{"who": {"n": null}, "tag": ""}')
    assert not _accepts_text(grammar, '{"who": {"other": 1}, "tag": "ab"}')
    assert not _accepts_text(grammar, '{"who": {"n": 4}, "tag": "ab"}')
    assert not _accepts_text(grammar, '{"who": null, "tag": "abc"}')


def test_a_type_list_at_the_root_keeps_its_defs() -> None:
    schema = {
        "type": ["array", "null"],
        "items": {"$ref": "#/$defs/point"},
        "$defs": {"point": {"type": "integer", "minimum": 0, "maximum": 9}},
    }
    grammar = json_constraint(False, schema)
    assert grammar is not None
    assert _accepts_text(grammar, "[1, 9]") and _accepts_text(grammar, "null")
    assert not _accepts_text(grammar, "[10]")


def test_a_patterns_dot_stays_inside_a_json_string() -> None:
    # "." took a raw quote (ending the string early) or a control character: no JSON then.
    grammar = json_constraint(False, {"type": "string", "pattern": "^.{2,3}$"})
    assert grammar is not None
    assert _accepts_text(grammar, '"ab"') and _accepts_text(grammar, '"a\\"b"')
    assert not _accepts_text(grammar, '"a"b"')
    assert not _accepts_text(grammar, '"a\tb"')


def test_formats_match_llama_cpp() -> None:
    for fmt, good, bad in [
        ("date", '"2024-02-29"', '"2024-13-01"'),
        ("time", '"23:59:59Z"', '"24:00:00Z"'),
        ("date-time", '"2024-02-29T12:00:00.123+02:00"', '"2024-02-29 12:00:00Z"'),
        ("uuid", '"123e4567-e89b-12d3-a456-426614174000"', '"123e4567e89b12d3a456426614174000"'),
    ]:
        grammar = json_constraint(False, {"type": "string", "format": fmt})
        assert grammar is not None
        assert _accepts_text(grammar, good) and not _accepts_text(grammar, bad), fmt


def test_optional_properties_and_order_match_llama_cpp() -> None:
    # Required properties first, in `properties` order; then optional ones, each skippable.
    schema = {
        "type": "object",
        "properties": {
            "a": {"type": "integer"},
            "b": {"type": "integer"},
            "c": {"type": "integer"},
        },
        "required": ["b"],
        "additionalProperties": False,
    }
    grammar = json_constraint(False, schema)
    assert grammar is not None
    for text in ['{"b": 1}', '{"b": 1, "a": 2}', '{"b": 1, "c": 3}', '{"b": 1, "a": 2, "c": 3}']:
        assert _accepts_text(grammar, text), text
    for text in ['{"a": 2, "b": 1}', '{"b": 1, "c": 3, "a": 2}', "{}"]:
        assert not _accepts_text(grammar, text), text


@pytest.mark.parametrize("extra", [True, {"type": "integer"}])
def test_an_extra_key_is_never_a_declared_name(extra: object) -> None:
    # As llama.cpp's converter (its _not_strings): the declared keys go in their own place,
    # an extra key is any other string, prefixes and extensions of the names included.
    schema = {
        "type": "object",
        "properties": {"name": {"type": "string"}, "nam": {"type": "string"}, "a-b]": {}},
        "required": ["name"],
        "additionalProperties": extra,
    }
    grammar = json_constraint(False, schema)
    assert grammar is not None
    for key in ["x", "", "n", "na", "names", "namx", "nams", "a-b", "a-b]]", "\\u0041", "é"]:
        assert _accepts_text(grammar, f'{{"name": "v", "{key}": 1}}'), key
    assert not _accepts_text(grammar, '{"name": "v", "name": "w"}')
    for key in ["name", "nam", "a-b]"]:  # not as an extra key, after one
        assert not _accepts_text(grammar, f'{{"name": "v", "x": 1, "{key}": "w"}}'), key
    for text in [
        '{"name": "v", "nam": "w"}',
        '{"name": "v", "nam": "w", "x": 1}',
        '{"name": "v", "a-b]": 1, "x": 1, "y": 2}',
    ]:
        assert _accepts_text(grammar, text), text  # each declared key in its own place
    assert not _accepts_text(grammar, '{"name": "v", "nam": "w", "x": 1, "nam": "w"}')


def test_extra_keys_without_declared_properties_are_any_string() -> None:
    grammar = json_constraint(False, {"type": "object", "additionalProperties": True})
    assert grammar is not None
    assert _accepts_text(grammar, '{"name": 1, "name": 2}')  # nothing declared to exclude
