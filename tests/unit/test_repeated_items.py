"""grammar/repeated_items.py: which bytes would start one more item of a JSON array after
`limit` identical ones (objects, arrays, long strings), read token by token."""

from __future__ import annotations

import pytest

from browser_llm.grammar.repeated_items import MIN_STRING_BYTES, RepeatedItems

ITEM = b'{"name": "milk", "amount": "10g"}'


def _read(text: bytes, limit: int = 3, step: int = 3) -> RepeatedItems:
    """The text fed as tokens of `step` bytes (token boundaries fall anywhere)."""
    items = RepeatedItems(limit)
    for i in range(0, len(text), step):
        items.take(text[i : i + step])
    return items


@pytest.mark.parametrize("step", [1, 2, 5, 64])
def test_another_item_after_limit_identical_objects_is_a_repeat(step: int) -> None:
    items = _read(b'{"ingredients": [' + b", ".join([ITEM] * 3), step=step)
    assert items.would_repeat(b",")
    assert items.would_repeat(b",\n")
    assert items.would_repeat(b"\n    ,")
    assert not items.would_repeat(b"]")
    assert not items.would_repeat(b"\n  ")  # whitespace starts nothing; the comma after it will


def test_fewer_identical_items_than_the_limit_are_not() -> None:
    items = _read(b"[" + b", ".join([ITEM] * 2))
    assert not items.would_repeat(b",")
    assert _read(b"[" + b", ".join([ITEM] * 2), limit=2).would_repeat(b",")


def test_a_different_item_restarts_the_run() -> None:
    other = b'{"name": "eggs", "amount": "2"}'
    assert not _read(b"[" + b", ".join([ITEM, ITEM, other])).would_repeat(b",")
    assert _read(b"[" + b", ".join([other, ITEM, ITEM, ITEM])).would_repeat(b",")


def test_items_compare_without_whitespace_outside_strings() -> None:
    pretty = b'{\n  "name": "milk",\n  "amount": "10g"\n}'
    assert _read(b"[" + b", ".join([ITEM, pretty, ITEM])).would_repeat(b",")
    spaced = b'{"name": "milk ", "amount": "10g"}'  # inside a string whitespace counts
    assert not _read(b"[" + b", ".join([ITEM, ITEM, spaced])).would_repeat(b",")


@pytest.mark.parametrize(
    ("item", "counts"),
    [
        (b"0", False),
        (b"true", False),
        (b"null", False),
        (b'"positive"', False),  # an enum value repeats by design
        (b'"' + b"x" * (MIN_STRING_BYTES - 2) + b'"', True),
        (b"[1, 2]", True),
        (b"{}", True),
    ],
)
def test_only_objects_arrays_and_long_strings_count(item: bytes, counts: bool) -> None:
    assert _read(b"[" + b", ".join([item] * 5)).would_repeat(b",") is counts


def test_brackets_and_commas_inside_strings_are_text() -> None:
    tricky = b'"a, [b], {c}, \\"d\\", e and more"'
    items = _read(b"[" + b", ".join([tricky] * 3))
    assert items.would_repeat(b",")
    assert not items.would_repeat(b' "x, y"')  # no separator at the array's level


def test_object_members_are_not_array_items() -> None:
    obj = b'{"a": ' + ITEM + b', "b": ' + ITEM + b', "c": ' + ITEM
    assert not _read(obj).would_repeat(b', "d": ')


def test_nested_arrays_keep_their_own_runs() -> None:
    inner = b"[" + b", ".join([ITEM] * 3)
    items = _read(b'{"rows": [' + inner)
    assert items.would_repeat(b",")  # the inner array
    items.take(b"]")
    assert not items.would_repeat(b",")  # the outer array has one item so far


def test_would_repeat_leaves_the_reading_unchanged() -> None:
    items = _read(b"[" + b", ".join([ITEM] * 2))
    assert not items.would_repeat(b", " + ITEM)  # the comma after the second item: allowed
    assert not items.would_repeat(b",")
    items.take(b", " + ITEM)
    assert items.would_repeat(b",")
