"""Durations as Ollama writes them: Go durations ("5m", "1h30m", "-1s") or seconds, and
keep_alive (every dialect's field for how long a model stays loaded) read from one."""

from __future__ import annotations

import math
import re

from browser_llm.core.errors import ValidationError

__all__ = ["FOREVER_S", "duration_seconds", "keep_alive_seconds"]

FOREVER_S = -1.0  # any negative duration: keep a model loaded for ever

_DURATION = re.compile(r"^(-?)((?:\d+(?:\.\d+)?(?:ns|us|µs|ms|s|m|h))+|\d+(?:\.\d+)?)$")
_UNIT_S = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}


def duration_seconds(value: str | int | float) -> float:
    """Seconds of a duration; every negative one is FOREVER_S. ValueError if malformed."""
    if isinstance(value, int | float):
        if not math.isfinite(value):
            raise ValueError("must be a finite number")
        seconds = float(value)
    else:
        match = _DURATION.match(value.strip())
        if match is None:
            raise ValueError('a duration such as "5m", "1h", "30s", or a number of seconds')
        body = match.group(2)
        if re.fullmatch(r"\d+(?:\.\d+)?", body):
            seconds = float(body)
        else:
            parts = re.findall(r"(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)", body)
            seconds = sum(float(n) * _UNIT_S[u] for n, u in parts)
        seconds = -seconds if match.group(1) else seconds
    return FOREVER_S if seconds < 0 else seconds


def keep_alive_seconds(value: str | int | float | None) -> float | None:
    """keep_alive in seconds: a number of seconds or a Go duration ("5m", "1h30m");
    negative (forever) is -1.0, 0 means unload now. None when not given."""
    if value is None:
        return None
    try:
        return duration_seconds(value)
    except ValueError as exc:
        raise ValidationError(f"keep_alive: {exc}", {"field": "keep_alive"}) from exc
