"""The GBNF parser and grammar walk that budget-aware closing relies on."""

from __future__ import annotations

import pytest

from browser_llm.grammar.gbnf import GrammarSyntaxError, parse_gbnf
from browser_llm.grammar.walk import GrammarWalker


def _walker(text: str) -> GrammarWalker:
    return GrammarWalker(parse_gbnf(text))


def _accepts(walker: GrammarWalker, text: str) -> bool:
    state = walker.walk(walker.initial, text)
    return state is not None and state.accepting


def test_repetitions_classes_and_escapes() -> None:
    w = _walker('root ::= "a"{2,3} [0-9]+ x? "\\n" [^"\\\\]* "\\x41"\nx ::= ("-" | "+")')
    assert _accepts(w, "aa12+\nzzA")
    assert _accepts(w, "aaa1\nA")
    assert not _accepts(w, "a1\nA")  # too few a
    assert not _accepts(w, "aaaa1\nA")  # too many a
    assert not _accepts(w, 'aa1\n"A')  # the class excludes the quote
    assert w.walk(w.initial, "aab") is None


def test_shortest_completion_prefers_the_first_of_equals() -> None:
    w = _walker('root ::= "{" item "}"\nitem ::= "bb" | "aa" | "ccc"')
    assert w.closing(w.initial) == "{bb}"
    state = w.walk(w.initial, "{c")
    assert state is not None and w.closing(state) == "cc}"


def test_comments_groups_and_multiline_groups() -> None:
    w = _walker('# a comment\nroot ::= ( "x"\n  | "y" ) # trailing\n')
    assert _accepts(w, "x") and _accepts(w, "y")


@pytest.mark.parametrize("text", ["root ::= undefined", 'rot ::= "a"', 'root ::= "a" {'])
def test_syntax_errors(text: str) -> None:
    with pytest.raises(GrammarSyntaxError):
        parse_gbnf(text)


def test_states_are_interned_and_bounded() -> None:
    w = GrammarWalker(parse_gbnf("root ::= [a-z]*"))
    assert w.walk(w.initial, "ab") is w.walk(w.initial, "cd")  # same stacks: one state
    small = GrammarWalker(parse_gbnf('root ::= "abcdefgh"'), max_states=3)
    assert small.walk(small.initial, "abcdefgh") is not None  # states beyond 3 are not kept
    assert small.full


def test_llama_cpps_json_whitespace_rule() -> None:
    from browser_llm.grammar.json_schema import JSON_WS

    w = _walker(f'root ::= "{{" space "}}"\nspace ::= {JSON_WS}')
    for gap in ["", " ", "\n", "\n\n", "\n\t  ", "\n" + " " * 20, "\n\n\t"]:
        assert _accepts(w, "{" + gap + "}"), repr(gap)
    for gap in ["  ", "\n\n\n", "\n" + " " * 21, "\t", " \n", "\r\n"]:
        assert not _accepts(w, "{" + gap + "}"), repr(gap)
    assert w.closing(w.initial) == "{}"
