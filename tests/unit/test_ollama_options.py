"""Ollama's keep_alive durations and option values -> this server's parameters."""

from __future__ import annotations

import pytest

from browser_llm.api.ollama.options import UNTIL_DONE, generation_params
from browser_llm.core.durations import keep_alive_seconds
from browser_llm.core.errors import ValidationError


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        (None, None),
        (0, 0.0),
        ("0", 0.0),
        ("0s", 0.0),
        ("5m", 300.0),
        ("1h30m", 5400.0),
        ("250ms", 0.25),
        (30, 30.0),
        (1.5, 1.5),
        ("-1", -1.0),
        (-5, -1.0),
        ("-1m", -1.0),
    ],
)
def test_keep_alive(value: str | float | None, seconds: float | None) -> None:
    assert keep_alive_seconds(value) == seconds


@pytest.mark.parametrize("value", ["soon", "5 m", "m5", "", "1d", float("inf")])
def test_bad_keep_alive(value: str | float) -> None:
    with pytest.raises(ValidationError):
        keep_alive_seconds(value)


def test_num_predict_and_repeat_last_n_special_values() -> None:
    assert generation_params({"num_predict": -1}, 2048).max_tokens == UNTIL_DONE
    assert generation_params({"num_predict": -2}, 2048).max_tokens == UNTIL_DONE
    assert generation_params({"num_predict": 64.0}, 2048).max_tokens == 64
    assert generation_params({"repeat_last_n": -1}, 2048).penalty_last_n == 2048
    assert generation_params({"seed": -1}, 2048).seed is None
    assert generation_params({"top_k": 0}, 2048).top_k == 0
    assert generation_params({"stop": "END"}, 2048).stop == ("END",)
    for bad in ({"num_predict": -3}, {"repeat_last_n": 4096}, {"temperature": True}):
        with pytest.raises(ValidationError):
            generation_params(bad, 2048)
