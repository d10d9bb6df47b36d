"""GBNF text -> a compiled grammar that Python can walk (for closing JSON in time).

llama.cpp enforces the grammar while sampling, but its state is opaque. To know the
shortest way to finish the output from where it stands, the engine walks the same
grammar text itself (grammar/walk.py). This module only parses: rules,
alternatives, literals, character classes, `.`, groups and the repetition operators
(`*`, `+`, `?`, `{m}`, `{m,}`, `{m,n}`), which become generated rules as in llama.cpp.

Layout: every alternative is a run of elements in one flat list, ended by None, so a
position in the grammar is one int and "the next element" is position + 1.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["CharClass", "Grammar", "GrammarSyntaxError", "parse_gbnf"]


class GrammarSyntaxError(ValueError):
    pass


@dataclass(frozen=True)
class CharClass:
    """One character from `ranges` (inclusive code point pairs), or any other when negated."""

    ranges: tuple[tuple[int, int], ...]
    negated: bool = False

    def matches(self, cp: int) -> bool:
        inside = any(lo <= cp <= hi for lo, hi in self.ranges)
        return inside != self.negated

    def example(self) -> str:
        """A character the class accepts, preferring plain printable ones (for filler text)."""
        if not self.negated:
            for lo, hi in self.ranges:
                for cp in range(lo, min(hi, lo + 256) + 1):
                    if 0x20 <= cp < 0x7F:
                        return chr(cp)
            return chr(self.ranges[0][0])
        for cp in (0x61, *range(0x20, 0x7F), *range(0xA0, 0x800)):
            if self.matches(cp):
                return chr(cp)
        raise GrammarSyntaxError("character class accepts nothing printable")


# An element is a CharClass or the int id of a rule it refers to.
Element = CharClass | int


@dataclass
class Grammar:
    elements: list[Element | None]  # None stands for END (kept apart from rule ids)
    alternatives: list[list[int]]  # rule id -> start positions of its alternatives
    names: dict[str, int]

    @property
    def root(self) -> int:
        return self.names["root"]


def _is_name_char(c: str) -> bool:
    return c.isalnum() or c in "-_"


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.i = 0
        self.names: dict[str, int] = {}
        self.bodies: list[list[list[Element]] | None] = []

    # ---- rule table --------------------------------------------------------
    def rule_id(self, name: str) -> int:
        if name not in self.names:
            self.names[name] = len(self.bodies)
            self.bodies.append(None)
        return self.names[name]

    def new_rule(self, alternatives: list[list[Element]]) -> int:
        rule = self.rule_id(f"__gen{len(self.bodies)}")
        self.bodies[rule] = alternatives
        return rule

    # ---- lexing --------------------------------------------------------------
    def peek(self) -> str:
        return self.text[self.i] if self.i < len(self.text) else ""

    def skip_space(self, newlines: bool) -> None:
        while self.i < len(self.text):
            c = self.text[self.i]
            if c == "#":
                while self.i < len(self.text) and self.text[self.i] not in "\r\n":
                    self.i += 1
            elif c in " \t" or (newlines and c in "\r\n"):
                self.i += 1
            else:
                return

    def name(self) -> str:
        start = self.i
        while self.i < len(self.text) and _is_name_char(self.text[self.i]):
            self.i += 1
        if start == self.i:
            raise GrammarSyntaxError(f"expected a rule name at {start}")
        return self.text[start : self.i]

    def char(self) -> int:
        c = self.peek()
        if not c:
            raise GrammarSyntaxError("unexpected end of grammar")
        self.i += 1
        if c != "\\":
            return ord(c)
        e = self.peek()
        self.i += 1
        sizes = {"x": 2, "u": 4, "U": 8}
        if e in sizes:
            digits = self.text[self.i : self.i + sizes[e]]
            self.i += sizes[e]
            return int(digits, 16)
        return ord({"t": "\t", "r": "\r", "n": "\n"}.get(e, e))

    # ---- grammar ---------------------------------------------------------------
    def parse(self) -> Grammar:
        while True:
            self.skip_space(newlines=True)
            if self.i >= len(self.text):
                break
            rule = self.rule_id(self.name())
            self.skip_space(newlines=False)
            if not self.text.startswith("::=", self.i):
                raise GrammarSyntaxError(f"expected ::= at {self.i}")
            self.i += 3
            self.bodies[rule] = self.alternates(nested=False)
        missing = [n for n, r in self.names.items() if self.bodies[r] is None]
        if missing or "root" not in self.names:
            raise GrammarSyntaxError(f"undefined rules: {missing or ['root']}")
        return self.flatten()

    def alternates(self, nested: bool) -> list[list[Element]]:
        alts = [self.sequence(nested)]
        while self.peek() == "|":
            self.i += 1
            alts.append(self.sequence(nested))
        return alts

    def sequence(self, nested: bool) -> list[Element]:
        seq: list[Element] = []
        last: list[Element] = []  # the last item, for a repetition operator
        while True:
            self.skip_space(newlines=nested)
            c = self.peek()
            if not c:
                return seq
            if c == '"':
                self.i += 1
                last = []
                while self.peek() != '"':
                    cp = self.char()
                    last.append(CharClass(((cp, cp),)))
                self.i += 1
            elif c == "[":
                self.i += 1
                negated = self.peek() == "^"
                self.i += negated
                ranges = []
                while self.peek() != "]":
                    lo = self.char()
                    hi = lo
                    if self.peek() == "-" and self.text[self.i + 1 : self.i + 2] != "]":
                        self.i += 1
                        hi = self.char()
                    ranges.append((lo, hi))
                self.i += 1
                last = [CharClass(tuple(ranges), negated)]
            elif c == ".":
                self.i += 1
                last = [CharClass((), negated=True)]
            elif c == "(":
                self.i += 1
                body = self.alternates(nested=True)
                self.skip_space(newlines=True)
                if self.peek() != ")":
                    raise GrammarSyntaxError(f"expected ) at {self.i}")
                self.i += 1
                last = [self.new_rule(body)]
            elif _is_name_char(c):
                last = [self.rule_id(self.name())]
            elif c in "*+?{":
                if not last:
                    raise GrammarSyntaxError(f"repetition without an item at {self.i}")
                del seq[len(seq) - len(last) :]
                last = self.repeat(last)
            else:
                return seq
            seq.extend(last)

    def repeat(self, item: list[Element]) -> list[Element]:
        c = self.peek()
        self.i += 1
        if c == "*":
            lo, hi = 0, None
        elif c == "+":
            lo, hi = 1, None
        elif c == "?":
            lo, hi = 0, 1
        else:
            end = self.text.index("}", self.i)
            parts = self.text[self.i : end].split(",")
            self.i = end + 1
            lo = int(parts[0])
            hi = lo if len(parts) == 1 else (int(parts[1]) if parts[1].strip() else None)
        out = item * lo
        if hi is None:
            star = self.new_rule([])
            self.bodies[star] = [[*item, star], []]  # right recursion: stacks stay flat
            return [*out, star]
        tail: list[Element] = []
        for _ in range(hi - lo):  # (x (x (x)?)?)? built from the inside out
            tail = [self.new_rule([[*item, *tail], []])]
        return [*out, *tail]

    def flatten(self) -> Grammar:
        elements: list[Element | None] = []
        alternatives: list[list[int]] = []
        for body in self.bodies:
            assert body is not None
            starts = []
            for alt in body:
                starts.append(len(elements))
                elements.extend(alt)
                elements.append(None)
            alternatives.append(starts)
        return Grammar(elements, alternatives, dict(self.names))


def parse_gbnf(text: str) -> Grammar:
    try:
        return _Parser(text).parse()
    except (IndexError, ValueError) as exc:
        if isinstance(exc, GrammarSyntaxError):
            raise
        raise GrammarSyntaxError(str(exc)) from exc
