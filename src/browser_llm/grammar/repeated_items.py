"""A JSON array that repeats one item over and over has lost the thread: a small model that
wrote the same object twice in a row at temperature 0 writes it again until the token budget
ends the answer (the answer then ends with finish_reason "length", which client libraries
raise as an error). RepeatedItems reads the JSON as it is generated and says when a token
would start one more item after `limit` identical ones in a row, so the sampler can take the
model's best other choice (the grammar then leaves it `]`, or whitespace before it).

Only items that cannot plausibly repeat by design count: objects, arrays and strings of at
least MIN_STRING_BYTES (the same number, flag or enum value three times is ordinary data).
Items are compared with whitespace outside strings removed.
"""

from __future__ import annotations

__all__ = ["MIN_STRING_BYTES", "RepeatedItems"]

MIN_STRING_BYTES = 16  # a string item shorter than this (quotes included) never counts
_WHITESPACE = frozenset(b" \t\r\n")
_QUOTE, _BACKSLASH, _COMMA = ord('"'), ord("\\"), ord(",")
_OPEN = frozenset(b"{[")
_CLOSE = frozenset(b"}]")


class _Frame:
    """One open container; for an array, where its current item began in the text and the
    run of identical items that ended just before it."""

    __slots__ = ("array", "last", "run", "start")

    def __init__(self, array: bool, start: int) -> None:
        self.array = array
        self.start = start
        self.last: bytes | None = None
        self.run = 0

    def copy(self) -> _Frame:
        frame = _Frame(self.array, self.start)
        frame.last, frame.run = self.last, self.run
        return frame


def _counts(item: bytes) -> bool:
    if not item:
        return False
    return item[0] in _OPEN or (item[0] == _QUOTE and len(item) >= MIN_STRING_BYTES)


class RepeatedItems:
    """One sequence's JSON output, read token by token (its bytes, as generated)."""

    def __init__(self, limit: int = 3) -> None:
        self.limit = limit
        self._text = bytearray()  # the output without whitespace outside strings
        self._frames: list[_Frame] = []
        self._in_string = False
        self._escaped = False

    def would_repeat(self, piece: bytes) -> bool:
        """Whether these bytes would start another item after `limit` identical ones."""
        if b"," not in piece:  # only a separator starts an item (most tokens have none)
            return False
        mark = len(self._text)
        saved = ([f.copy() for f in self._frames], self._in_string, self._escaped)
        try:
            return self._read(piece)
        finally:
            del self._text[mark:]
            self._frames, self._in_string, self._escaped = saved

    def take(self, piece: bytes) -> None:
        """Records a token's bytes as part of the output."""
        self._read(piece)

    def _read(self, piece: bytes) -> bool:
        repeated = False
        text, frames = self._text, self._frames
        for byte in piece:
            if self._in_string:
                text.append(byte)
                if self._escaped:
                    self._escaped = False
                elif byte == _BACKSLASH:
                    self._escaped = True
                elif byte == _QUOTE:
                    self._in_string = False
                continue
            if byte in _WHITESPACE:
                continue
            if byte == _QUOTE:
                self._in_string = True
            elif byte in _OPEN:
                text.append(byte)
                frames.append(_Frame(byte == ord("["), len(text)))
                continue
            elif byte in _CLOSE:
                if frames:
                    frame = frames.pop()
                    if frame.array:
                        self._end_item(frame)
            elif byte == _COMMA and frames and frames[-1].array:
                frame = frames[-1]
                self._end_item(frame)
                repeated = repeated or (frame.run >= self.limit and _counts(frame.last or b""))
                text.append(byte)
                frame.start = len(text)
                continue
            text.append(byte)
        return repeated

    def _end_item(self, frame: _Frame) -> None:
        item = bytes(self._text[frame.start :])
        if not item:
            return
        if item == frame.last:
            frame.run += 1
        else:
            frame.last, frame.run = item, 1
