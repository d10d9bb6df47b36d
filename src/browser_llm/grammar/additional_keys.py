"""Keys of additionalProperties that are not a declared property's name.

The Python converter lets an extra key be any string, so an answer could repeat a
declared key (`{"name": "a", "name": "b"}`): a duplicate that JSON parsers resolve by
keeping one and schema validation never sees. llama.cpp's C++ converter writes the extra
key as a string that is none of the declared names; so do we, from a trie of the names.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

__all__ = ["converter_with_key_exclusion", "not_strings"]

_ESCAPE = '"\\\\" (["\\\\/bfnrt] | "u" [0-9a-fA-F]{4})'
_NEEDS_ESCAPE_IN_CLASS = set("\\]^-[")


def not_strings(names: list[str], char: str = "char") -> str | None:
    """A GBNF body matching a JSON string (with its quotes) that is none of `names`; None
    when a name holds a character JSON writes escaped (no exclusion is built then)."""
    if any(c in '"\\' or ord(c) < 0x20 or c == "\x7f" for name in names for c in name):
        return None
    trie: dict[str, Any] = {}
    for name in names:
        node = trie
        for c in name:
            node = node.setdefault(c, {})
        node[""] = {}  # a name ends here

    def rest(node: dict[str, Any]) -> str:
        """What may follow the prefix of `node` so the key is not a name."""
        children = [c for c in node if c]
        alts = []
        for c in children:
            child = node[c]
            if [k for k in child if k]:
                alts.append(f"[{_class_char(c)}] {rest(child)}")
            else:  # a name ends here and no longer one starts with it
                alts.append(f"[{_class_char(c)}] {char}+")
        rejects = "".join(_class_char(c) for c in children)
        alts.append(f'[^"\\\\\\x7F\\x00-\\x1F{rejects}] {char}*')
        alts.append(f"{_ESCAPE} {char}*")
        body = "(" + " | ".join(alts) + ")"
        return body if "" in node else body + "?"

    return f'"\\"" {rest(trie)} "\\""'


def _class_char(c: str) -> str:
    return "\\" + c if c in _NEEDS_ESCAPE_IN_CLASS else c


def converter_with_key_exclusion(module: Any) -> Callable[[str], str]:
    """llama-cpp-python's json_schema_to_gbnf with llama.cpp's extra keys: never a declared
    name, and after an optional property each one behind its own comma (the Python port
    wrote them right after that property's value, with no comma, and required one)."""

    class _Converter(module.SchemaConverter):  # type: ignore[misc]
        def __init__(self) -> None:
            super().__init__(prop_order={}, allow_fetch=False, dotall=False, raw_pattern=False)
            self._objects: list[_Object] = []  # the objects being built, innermost last

        def _build_object_rule(
            self, properties: list[tuple[str, Any]], required: Any, name: str, extra: Any
        ) -> Any:
            self._objects.append(_Object([key for key, _ in properties]))
            try:
                return super()._build_object_rule(properties, required, name, extra)
            finally:
                self._objects.pop()

        def _add_rule(self, name: str, rule: str) -> Any:
            # The extra-key rules come after the object's properties were visited, so the
            # innermost object being built is the one they belong to.
            this = self._objects[-1] if self._objects else None
            if this is None:
                return super()._add_rule(name, rule)
            if name.endswith("additional-kv") and rule.startswith("string "):
                key = not_strings(this.declared) if this.declared else None
                if key is not None:
                    self._add_primitive("char", module.PRIMITIVE_RULES["char"])
                    key_rule = super()._add_rule(name[: -len("-kv")] + "-k", key)
                    rule = key_rule + rule[len("string") :]
                this.kv = super()._add_rule(name, rule)
                return this.kv
            if name.endswith("additional-kvs"):
                this.kvs = super()._add_rule(name, rule)
                return this.kvs
            if name.endswith("-rest") and this.kvs is not None and rule == this.kvs:
                rule = f'( "," space {this.kv} )*'
            return super()._add_rule(name, rule)

    def convert(schema: str) -> str:
        converter = _Converter()
        resolved = converter.resolve_refs(json.loads(schema), "stdin")
        converter.visit(resolved, "")
        return str(converter.format_grammar())

    return convert


@dataclass
class _Object:
    declared: list[str]
    kv: str | None = None  # its extra key-value rule
    kvs: str | None = None  # one or more of them
