"""An integer range -> GBNF, as llama.cpp builds it (build_min_max_int in
common/json-schema-to-grammar.cpp, ported line for line), so a bounded integer in a schema
gets the same grammar here as in llama-server: any range, one side or both, negatives too.
"""

from __future__ import annotations

__all__ = ["integer_range_rule"]


def integer_range_rule(low: int | None, high: int | None) -> str:
    """GBNF for the integers in [low, high] (None: unbounded on that side), no leading zeros."""
    out: list[str] = []
    _min_max_int(out, low, high)
    return "".join(out)


def _digit_range(out: list[str], lo: str, hi: str) -> None:
    out.append(f"[{lo}]" if lo == hi else f"[{lo}-{hi}]")


def _more_digits(out: list[str], low: int, high: int | None) -> None:
    out.append("[0-9]")
    if low == high == 1:
        return
    out.append(f"{{{low}" + ("" if high == low else f",{'' if high is None else high}") + "}")


def _uniform_range(out: list[str], start: str, end: str) -> None:
    """Numbers of one length from start to end, digit by digit."""
    i = 0
    while i < len(start) and i < len(end) and start[i] == end[i]:
        i += 1
    if i > 0:
        out.append(f'"{start[:i]}"')
    if i < len(start) and i < len(end):
        if i > 0:
            out.append(" ")
        sub_len = len(start) - i - 1
        if sub_len > 0:
            from_sub, to_sub = start[i + 1 :], end[i + 1 :]
            zeros, nines = "0" * sub_len, "9" * sub_len
            to_reached = False
            out.append("(")
            if from_sub == zeros:
                _digit_range(out, start[i], chr(ord(end[i]) - 1))
                out.append(" ")
                _more_digits(out, sub_len, sub_len)
            else:
                out.append(f"[{start[i]}] (")
                _uniform_range(out, from_sub, nines)
                out.append(")")
                if start[i] < chr(ord(end[i]) - 1):
                    out.append(" | ")
                    if to_sub == nines:
                        _digit_range(out, chr(ord(start[i]) + 1), end[i])
                        to_reached = True
                    else:
                        _digit_range(out, chr(ord(start[i]) + 1), chr(ord(end[i]) - 1))
                    out.append(" ")
                    _more_digits(out, sub_len, sub_len)
            if not to_reached:
                out.append(" | ")
                _digit_range(out, end[i], end[i])
                out.append(" ")
                _uniform_range(out, zeros, to_sub)
            out.append(")")
        else:
            out.append(f"[{start[i]}-{end[i]}]")


def _min_max_int(
    out: list[str], lo: int | None, hi: int | None, decimals: int = 16, top: bool = True
) -> None:
    if lo is not None and hi is not None:
        if lo < 0 and hi < 0:
            out.append('"-" (')
            _min_max_int(out, -hi, -lo, decimals, True)
            out.append(")")
            return
        if lo < 0:
            out.append('"-" (')
            _min_max_int(out, 0, -lo, decimals, True)
            out.append(") | ")
            lo = 0
        low_s, high_s = str(lo), str(hi)
        for digits in range(len(low_s), len(high_s)):
            _uniform_range(out, low_s, "9" * digits)
            low_s = "1" + "0" * digits
            out.append(" | ")
        _uniform_range(out, low_s, high_s)
        return
    less = max(decimals - 1, 1)
    if lo is not None:
        if lo < 0:
            out.append('"-" (')
            _min_max_int(out, None, -lo, decimals, False)
            out.append(") | [0] | [1-9] ")
            _more_digits(out, 0, decimals - 1)
        elif lo == 0:
            if top:
                out.append("[0] | [1-9] ")
                _more_digits(out, 0, less)
            else:
                _more_digits(out, 1, decimals)
        elif lo <= 9:
            c = str(lo)
            start = "1" if top else "0"
            if c > start:
                _digit_range(out, start, chr(ord(c) - 1))
                out.append(" ")
                _more_digits(out, 1, less)
                out.append(" | ")
            _digit_range(out, c, "9")
            out.append(" ")
            _more_digits(out, 0, less)
        else:
            low_s = str(lo)
            c = low_s[0]
            if c > "1":
                _digit_range(out, "1" if top else "0", chr(ord(c) - 1))
                out.append(" ")
                _more_digits(out, len(low_s), less)
                out.append(" | ")
            _digit_range(out, c, c)
            out.append(" (")
            _min_max_int(out, int(low_s[1:]), None, less, False)
            out.append(")")
            if c < "9":
                out.append(" | ")
                _digit_range(out, chr(ord(c) + 1), "9")
                out.append(" ")
                _more_digits(out, len(low_s) - 1, less)
        return
    if hi is not None:
        if hi >= 0:
            if top:
                out.append('"-" [1-9] ')
                _more_digits(out, 0, less)
                out.append(" | ")
            _min_max_int(out, 0, hi, decimals, True)
        else:
            out.append('"-" (')
            _min_max_int(out, -hi, None, decimals, False)
            out.append(")")
        return
    raise ValueError("an integer range needs a minimum or a maximum")
