"""A model's output split into its reasoning and its answer, as the pieces stream in.

The reasoning is what stands between the opening and closing markers (``<think>`` and
``</think>``, or whatever the chat template uses). The opening marker is either in the
prompt (templates that open the block in the generation prompt: the output starts inside
it) or the first thing the model writes; a marker later in the answer is answer text.
Pure: any chunking of the same text gives the same concatenated reasoning and answer,
so a marker cut across pieces still splits, and a whole text splits the same as streamed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

__all__ = ["ThinkMarkers", "ThinkSplitter", "reasoning_end", "split_whole"]


@dataclass(frozen=True)
class ThinkMarkers:
    open: str
    close: str


def _overlap(text: str, tag: str) -> int:
    """The length of the longest end of `text` that begins `tag` (a tag cut short)."""
    for n in range(min(len(text), len(tag) - 1), 0, -1):
        if tag.startswith(text[-n:]):
            return n
    return 0


class ThinkSplitter:
    """feed(piece) -> (reasoning, answer) text safe to send now; finish() -> what was held.

    Leading whitespace of the reasoning, whitespace before the closing marker and the
    whitespace between it and the answer are the template's layout, not text: dropped.
    """

    def __init__(self, markers: ThinkMarkers, inside: bool) -> None:
        self.markers = markers
        self._state: Literal["start", "reasoning", "answer"] = "reasoning" if inside else "start"
        self._held = ""
        self._lead = True  # at the start of the reasoning or the answer: drop whitespace
        # The prompt opened the block, yet some models write the opening marker again.
        self._echo = inside

    def feed(self, piece: str) -> tuple[str, str]:
        self._held += piece
        reasoning = answer = ""
        if self._state == "start":
            head = self._held.lstrip()
            if head.startswith(self.markers.open):
                self._held, self._state = head[len(self.markers.open) :], "reasoning"
            elif self.markers.open.startswith(head):
                return "", ""  # whitespace, or the opening marker cut short: wait
            else:  # no thinking: the answer, as written
                answer, self._held = self._held, ""
                self._state, self._lead = "answer", False
                return "", answer
        if self._state == "reasoning":
            if self._echo:
                head = self._held.lstrip()
                if head.startswith(self.markers.open):
                    self._held, self._echo = head[len(self.markers.open) :], False
                elif self.markers.open.startswith(head):
                    return "", ""  # whitespace, or the marker again cut short: wait
                else:
                    self._echo = False
            if self._lead:
                self._held = self._held.lstrip()
                self._lead = not self._held
            at = self._held.find(self.markers.close)
            if at < 0:
                keep = _overlap(self._held, self.markers.close)
                safe = self._held[: len(self._held) - keep].rstrip()
                self._held = self._held[len(safe) :]
                return safe, ""
            reasoning = self._held[:at].rstrip()
            self._held = self._held[at + len(self.markers.close) :]
            self._state, self._lead = "answer", True
        if self._lead:
            self._held = self._held.lstrip()
            self._lead = not self._held
        answer, self._held = self._held, ""
        return reasoning, answer

    def finish(self) -> tuple[str, str]:
        """The end of the output: held text is what it is (a marker never completed)."""
        held, self._held = self._held, ""
        if self._state == "start":
            return "", held
        if self._state == "reasoning":
            return (held.strip() if self._lead else held.rstrip()), ""
        return "", ""


def split_whole(markers: ThinkMarkers, inside: bool, text: str) -> tuple[str, str]:
    """(reasoning, answer) of a whole output."""
    splitter = ThinkSplitter(markers, inside)
    r1, a1 = splitter.feed(text)
    r2, a2 = splitter.finish()
    return r1 + r2, a1 + a2


def reasoning_end(markers: ThinkMarkers, inside: bool, text: str) -> int:
    """Where a whole output's reasoning ends, its closing marker included: 0 when the
    output has none, len(text) when the block was never closed (the splitter's reading)."""
    at = 0
    if not inside:
        head = text.lstrip()
        if not head.startswith(markers.open):
            return 0
        at = len(text) - len(head) + len(markers.open)
    close = text.find(markers.close, at)
    return len(text) if close < 0 else close + len(markers.close)
