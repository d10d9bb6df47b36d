"""The reasoning/answer splitter: known splits, and the same split on any chunking."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st

from browser_llm.service.thinking.split import (
    ThinkMarkers,
    ThinkSplitter,
    reasoning_end,
    split_whole,
)

THINK = ThinkMarkers("<think>", "</think>")


def _streamed(text: str, cuts: list[int], inside: bool) -> tuple[str, str]:
    splitter = ThinkSplitter(THINK, inside)
    reasoning = answer = ""
    bounds = [0, *sorted({c % (len(text) + 1) for c in cuts}), len(text)]
    for a, b in itertools.pairwise(bounds):
        r, t = splitter.feed(text[a:b])
        reasoning, answer = reasoning + r, answer + t
    r, t = splitter.finish()
    return reasoning + r, answer + t


@pytest.mark.parametrize(
    ("text", "inside", "expected"),
    [
        ("\nsome thought\n</think>\n\nThe answer.", True, ("some thought", "The answer.")),
        ("<think>a b</think>c", False, ("a b", "c")),
        ("  <think>\nx\n</think> y", False, ("x", "y")),
        ("plain answer", False, ("", "plain answer")),
        ("  plain, with its leading spaces", False, ("", "  plain, with its leading spaces")),
        ("still thinking when cut", True, ("still thinking when cut", "")),
        ("thinking </thi", True, ("thinking </thi", "")),
        ("<thi", False, ("", "<thi")),
        ("</think>only answer", True, ("", "only answer")),
        ("<think>\nx</think>y", True, ("x", "y")),  # the opening marker written again
        (" <thi", True, ("<thi", "")),
        ("a</think>b</think>c", True, ("a", "b</think>c")),  # once closed, all answer
        ("answer <think>later</think>", False, ("", "answer <think>later</think>")),
        ("", True, ("", "")),
        ("", False, ("", "")),
    ],
)
def test_known_splits(text: str, inside: bool, expected: tuple[str, str]) -> None:
    assert split_whole(THINK, inside, text) == expected
    # one character at a time: every marker is cut across pieces
    assert _streamed(text, list(range(len(text))), inside) == expected


_ALPHABET = st.sampled_from(["<think>", "</think>", "<", "/", "t", "h", "ink>", " ", "\n", "a"])


@given(
    parts=st.lists(_ALPHABET, max_size=20),
    cuts=st.lists(st.integers(min_value=0, max_value=200), max_size=12),
    inside=st.booleans(),
)
def test_any_chunking_splits_as_the_whole(parts: list[str], cuts: list[int], inside: bool) -> None:
    text = "".join(parts)
    assert _streamed(text, cuts, inside) == split_whole(THINK, inside, text)


@given(parts=st.lists(_ALPHABET, max_size=20), inside=st.booleans())
def test_the_reasoning_ends_where_the_answer_begins(parts: list[str], inside: bool) -> None:
    """reasoning_end (what reasoning_tokens counts up to) reads the text as the splitter
    does: the answer is what follows it, less the layout."""
    text = "".join(parts)
    end = reasoning_end(THINK, inside, text)
    _, answer = split_whole(THINK, inside, text)
    assert answer == (text[end:].lstrip() if end else text)


@given(
    reasoning=st.text(alphabet="ab <>/\n", max_size=30).filter(lambda s: "</think>" not in s),
    answer=st.text(alphabet="ab <>/\n", max_size=30),
    cuts=st.lists(st.integers(min_value=0, max_value=200), max_size=12),
)
def test_the_parts_are_the_text_less_markers_and_layout(
    reasoning: str, answer: str, cuts: list[int]
) -> None:
    text = f"{reasoning}</think>{answer}"
    assert _streamed(text, cuts, True) == (reasoning.strip(), answer.lstrip())


def test_a_streamed_piece_is_sent_as_soon_as_it_cannot_be_a_marker() -> None:
    splitter = ThinkSplitter(THINK, inside=True)
    assert splitter.feed("one two") == ("one two", "")
    assert splitter.feed(" </th") == ("", "")  # could be the closing marker: held
    assert splitter.feed("ink>\n") == ("", "")
    assert splitter.feed("Answer") == ("", "Answer")
    assert splitter.finish() == ("", "")
