"""Where generated text stands in a grammar, and the shortest text that completes it.

A state is the set of parse stacks the text so far allows (llama.cpp's grammar
keeps the same thing); a stack is a tuple of grammar positions, the next element
to match on top. States are interned and their transitions cached, so walking a
character is one dict lookup once a state was seen (a lazily built automaton):
the JSON grammars of everyday requests revisit the same few thousand states.

The shortest completion of a state is the cheapest of its stacks: the sum, over
its frames, of the shortest text that finishes each frame's alternative. Ties go
to the earlier alternative in the grammar (so the first enum value of equal length).
"""

from __future__ import annotations

import math

from browser_llm.grammar.gbnf import CharClass, Grammar

__all__ = ["GrammarWalker", "WalkState"]

Stack = tuple[int, ...]


class WalkState:
    """One interned set of stacks; `closing` and `cost` are filled in on first use."""

    __slots__ = ("closing", "cost", "next", "stacks")

    def __init__(self, stacks: frozenset[Stack]) -> None:
        self.stacks = stacks
        self.next: dict[str, WalkState | None] = {}
        self.closing: str | None = None
        self.cost: int | None = None  # tokens of `closing` (set by the engine's JsonBudget)

    @property
    def accepting(self) -> bool:
        return () in self.stacks


class GrammarWalker:
    """Walks one compiled grammar; shared by every sequence that uses that grammar."""

    def __init__(self, grammar: Grammar, max_states: int = 20_000) -> None:
        self._g = grammar
        self._max_states = max_states
        self._states: dict[frozenset[Stack], WalkState] = {}
        self._rule_min = self._rule_minimums()
        self._suffix_min = self._suffix_minimums()
        self._rule_text: dict[int, str] = {}
        self._suffix_text: dict[int, str] = {}
        root = set()
        for start in grammar.alternatives[grammar.root]:
            root.update(self._expand(() if grammar.elements[start] is None else (start,)))
        self.initial = self._intern(frozenset(root))

    @property
    def full(self) -> bool:
        """Too many states seen: new sequences should get a fresh walker (bounds memory)."""
        return len(self._states) >= self._max_states

    # ---- walking ----------------------------------------------------------------
    def advance(self, state: WalkState, ch: str) -> WalkState | None:
        """The state after one more character, or None when the grammar forbids it."""
        try:
            return state.next[ch]
        except KeyError:
            pass
        cp = ord(ch)
        elements = self._g.elements
        found: set[Stack] = set()
        for stack in state.stacks:
            if not stack:
                continue
            top = stack[-1]
            element = elements[top]
            assert isinstance(element, CharClass)
            if element.matches(cp):
                rest = stack[:-1] if elements[top + 1] is None else (*stack[:-1], top + 1)
                found.update(self._expand(rest))
        nxt = self._intern(frozenset(found)) if found else None
        state.next[ch] = nxt
        return nxt

    def walk(self, state: WalkState | None, text: str) -> WalkState | None:
        for ch in text:
            if state is None:
                return None
            state = self.advance(state, ch)
        return state

    def _intern(self, stacks: frozenset[Stack]) -> WalkState:
        state = self._states.get(stacks)
        if state is None:
            state = WalkState(stacks)
            if len(self._states) < self._max_states:
                self._states[stacks] = state
        return state

    def _expand(self, stack: Stack) -> list[Stack]:
        """The stacks a stack stands for once every rule on top is opened (tops are chars)."""
        elements, alternatives = self._g.elements, self._g.alternatives
        out: list[Stack] = []
        seen: set[Stack] = set()
        todo = [stack]
        while todo:
            s = todo.pop()
            if s in seen:
                continue
            seen.add(s)
            if not s or isinstance(elements[s[-1]], CharClass):
                out.append(s)
                continue
            top = s[-1]
            rule = elements[top]
            assert isinstance(rule, int)
            # The frame goes when the rule is its alternative's last element (tail call).
            rest = s[:-1] if elements[top + 1] is None else (*s[:-1], top + 1)
            for start in alternatives[rule]:
                todo.append(rest if elements[start] is None else (*rest, start))
        return out

    # ---- shortest completion ------------------------------------------------------
    def closing(self, state: WalkState) -> str | None:
        """The shortest text that completes the grammar from this state (None: none does)."""
        if state.closing is None:
            best: Stack | None = None
            best_len = math.inf
            for stack in sorted(state.stacks):  # sorted: the same answer on every run
                length = sum(self._suffix_min[p] for p in stack)
                if length < best_len:
                    best, best_len = stack, length
            if best is None or best_len == math.inf:
                return None
            state.closing = "".join(self._finish(p) for p in reversed(best))
        return state.closing

    def _rule_minimums(self) -> list[float]:
        g = self._g
        rule_min = [math.inf] * len(g.alternatives)
        changed = True
        while changed:  # a fixed point: rules may refer to each other in any order
            changed = False
            for rule, starts in enumerate(g.alternatives):
                for start in starts:
                    total = self._run_length(start, rule_min)
                    if total < rule_min[rule]:
                        rule_min[rule] = total
                        changed = True
        return rule_min

    def _run_length(self, pos: int, rule_min: list[float]) -> float:
        total = 0.0
        elements = self._g.elements
        while elements[pos] is not None:
            element = elements[pos]
            total += 1 if isinstance(element, CharClass) else rule_min[element]  # type: ignore[index]
            pos += 1
        return total

    def _suffix_minimums(self) -> list[float]:
        elements = self._g.elements
        out = [0.0] * (len(elements) + 1)
        for pos in range(len(elements) - 1, -1, -1):
            element = elements[pos]
            if element is None:
                out[pos] = 0.0
            else:
                here = 1 if isinstance(element, CharClass) else self._rule_min[element]
                out[pos] = here + out[pos + 1]
        return out

    def _finish(self, pos: int) -> str:
        """The shortest text from grammar position pos to the end of its alternative."""
        start = pos
        text = self._suffix_text.get(start)
        if text is None:
            parts = []
            elements = self._g.elements
            while (element := elements[pos]) is not None:
                if isinstance(element, CharClass):
                    parts.append(element.example())
                else:
                    parts.append(self._shortest(element))
                pos += 1
            text = self._suffix_text[start] = "".join(parts)
        return text

    def _shortest(self, rule: int) -> str:
        text = self._rule_text.get(rule)
        if text is None:
            starts = self._g.alternatives[rule]
            best = min(starts, key=lambda s: self._suffix_min[s])  # first of equals
            text = self._rule_text[rule] = self._finish(best)
        return text
