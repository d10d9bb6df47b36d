"""UTF-8 holding-back and stop strings, token by token."""

from __future__ import annotations

from browser_llm.engine.text_stream import TextStream


def feed(stream: TextStream, pieces: list[bytes]) -> list[str]:
    return [stream.push(p) for p in pieces]


def test_split_multibyte_character_is_held_until_complete() -> None:
    emoji = "🙂".encode()  # 4 bytes
    cjk = "漢".encode()  # 3 bytes
    stream = TextStream()
    out = feed(stream, [b"a", emoji[:1], emoji[1:3], emoji[3:] + cjk[:2], cjk[2:]])
    assert out == ["a", "", "", "🙂", "漢"]
    assert stream.flush() == ""
    assert stream.text == "a🙂漢"


def test_character_cut_short_at_the_end_is_dropped() -> None:
    stream = TextStream()
    assert stream.push(b"ok" + "é".encode()[:1]) == "ok"
    assert stream.flush() == ""
    assert stream.text == "ok"


def test_invalid_bytes_inside_text_become_replacement() -> None:
    stream = TextStream()
    assert stream.push(b"a\xffb") == "a\ufffdb"


def test_stop_string_is_excluded_and_stops() -> None:
    stream = TextStream(stop=("END",))
    out = feed(stream, [b"Hello ", b"E", b"N", b"D and more"])
    assert "".join(out) == "Hello "
    assert stream.stopped
    assert stream.text == "Hello "
    assert stream.push(b"ignored") == ""


def test_partial_stop_is_released_when_it_does_not_complete() -> None:
    stream = TextStream(stop=("END",))
    assert stream.push(b"a E") == "a "
    assert stream.push(b"N") == ""
    assert stream.push(b"x") == "ENx"
    assert not stream.stopped


def test_earliest_of_several_stops_wins() -> None:
    stream = TextStream(stop=("world", "lo"))
    assert stream.push(b"hello world") == "hel"
    assert stream.stopped
    assert stream.matched == "lo"  # the one that ended it (Anthropic's stop_sequence)


def test_no_stop_matched_at_the_end_of_text() -> None:
    stream = TextStream(stop=("END",))
    stream.push(b"all E")
    stream.flush()
    assert stream.matched is None


def test_held_back_tail_is_flushed_at_end() -> None:
    stream = TextStream(stop=("\n\n",))
    assert stream.push(b"line\n") == "line"
    assert stream.flush() == "\n"
    assert stream.text == "line\n"
