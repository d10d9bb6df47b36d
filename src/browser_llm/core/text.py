"""Checks on text that arrives as JSON."""

from __future__ import annotations

import math
from typing import Any

__all__ = ["has_lone_surrogate", "has_non_finite_number", "json_depth"]


def has_lone_surrogate(value: Any) -> bool:
    """True if a str anywhere in a JSON-like value (keys included) cannot be UTF-8.

    JSON can carry lone surrogates ("\\ud800"); Python keeps them in a str, and the first
    UTF-8 encode (tokenizer, grammar) fails far from the request.
    """
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            try:
                item.encode("utf-8")
            except UnicodeEncodeError:
                return True
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list | tuple):
            stack.extend(item)
    return False


def has_non_finite_number(value: Any) -> bool:
    """True if a JSON-like value holds NaN or an infinity (Python's json reads them, but
    they are not JSON, and no JSON output can match them)."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, float) and not math.isfinite(item):
            return True
        if isinstance(item, dict):
            stack.extend(item.values())
        elif isinstance(item, list | tuple):
            stack.extend(item)
    return False


def json_depth(value: Any) -> int:
    """Nesting depth of a JSON-like value (a scalar is 0), without recursion."""
    deepest = 0
    stack = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        deepest = max(deepest, depth)
        if isinstance(item, dict):
            stack.extend((v, depth + 1) for v in item.values())
        elif isinstance(item, list | tuple):
            stack.extend((v, depth + 1) for v in item)
    return deepest
