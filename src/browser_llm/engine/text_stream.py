"""Turns a sequence's token bytes into safe text pieces, honouring stop strings.

Two things are held back from the client until they are settled (invalid
byte sequences inside the text become U+FFFD):
- bytes of a UTF-8 character that a token split (emitted once complete);
- a tail of text that could be the start of a stop string (emitted once it
  cannot be, dropped with the stop string when it is).
"""

from __future__ import annotations

import codecs

__all__ = ["TextStream"]


class TextStream:
    def __init__(self, stop: tuple[str, ...] = ()) -> None:
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._stop = tuple(s for s in stop if s)
        self._text = ""
        self._emitted = 0
        self.stopped = False
        self.matched: str | None = None  # the stop string that ended the text

    @property
    def text(self) -> str:
        """The text given out so far (never includes a stop string)."""
        return self._text[: self._emitted]

    @property
    def length(self) -> int:
        """Characters decoded so far (where the next token's text begins)."""
        return len(self._text)

    @property
    def emitted(self) -> int:
        """Characters given out so far."""
        return self._emitted

    def push(self, piece: bytes) -> str:
        """Adds one token's bytes; returns the text that is now safe to emit."""
        if self.stopped:
            return ""
        self._text += self._decoder.decode(piece)
        if self._stop:
            cut = self._find_stop()
            if cut is not None:
                self._text = self._text[:cut]
                self.stopped = True
                return self._take(cut)
            return self._take(len(self._text) - self._partial_stop_suffix())
        return self._take(len(self._text))

    def flush(self) -> str:
        """Ends the stream: gives out whatever text was held back.

        Bytes of a character that generation cut short (at max_tokens) are
        dropped: half a character is not text.
        """
        if self.stopped:
            return ""
        self._decoder.reset()
        return self._take(len(self._text))

    def _take(self, end: int) -> str:
        if end <= self._emitted:
            return ""
        out = self._text[self._emitted : end]
        self._emitted = end
        return out

    def _find_stop(self) -> int | None:
        # Emitted text never ends with a stop prefix, so a match starts at or
        # after the emitted position.
        best: int | None = None
        for s in self._stop:
            i = self._text.find(s, self._emitted)
            if i != -1 and (best is None or i < best):
                best, self.matched = i, s
        return best

    def _partial_stop_suffix(self) -> int:
        """Length of the longest tail of unsent text that begins some stop string."""
        tail = self._text[self._emitted :]
        longest = 0
        for s in self._stop:
            for n in range(min(len(s) - 1, len(tail)), longest, -1):
                if s.startswith(tail[-n:]):
                    longest = n
                    break
        return longest
