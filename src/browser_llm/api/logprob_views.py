"""Log-probability request fields -> the engine's option, and its entries -> the three
answer shapes: OpenAI chat (`content[]`), OpenAI legacy completions (parallel lists),
and Ollama (a `logprobs` list on each line).

The numbers are the model's raw distribution at each position (before temperature,
top-k/top-p, penalties or a JSON grammar); see engine/native/logprobs.py and docs/api.md.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from browser_llm.core.errors import ValidationError
from browser_llm.core.types import TokenChoice, TokenLogprob

__all__ = [
    "chat_logprobs",
    "completion_logprobs",
    "legacy_option",
    "logprobs_option",
    "ollama_logprobs",
    "token_text",
]

MAX_TOP = 20  # OpenAI chat and Ollama
MAX_TOP_LEGACY = 5  # OpenAI's /v1/completions


def logprobs_option(
    logprobs: bool | None, top_logprobs: int | None, field: str = "top_logprobs"
) -> int | None:
    """The engine's option (alternatives per token; None: off) from a boolean `logprobs`
    and a count `top_logprobs`, as OpenAI chat and Ollama take them."""
    if top_logprobs is not None and not 0 <= top_logprobs <= MAX_TOP:
        raise ValidationError(f"{field}: must be 0-{MAX_TOP}", {"field": field})
    if not logprobs:
        if top_logprobs:
            raise ValidationError(f"{field}: needs logprobs: true", {"field": field})
        return None
    return top_logprobs or 0


def legacy_option(logprobs: int | None) -> int | None:
    """/v1/completions: `logprobs` is itself the count (0-5); None: off."""
    if logprobs is None:
        return None
    if not 0 <= logprobs <= MAX_TOP_LEGACY:
        raise ValidationError(f"logprobs: must be 0-{MAX_TOP_LEGACY}", {"field": "logprobs"})
    return logprobs


def token_text(piece: bytes) -> str:
    """A token's text; bytes that are not whole UTF-8 (a character cut between tokens)
    are written as \\xNN escapes, the exact bytes being in `bytes`."""
    return piece.decode("utf-8", errors="backslashreplace")


def _one(choice: TokenChoice) -> dict[str, Any]:
    return {
        "token": token_text(choice.piece),
        "logprob": choice.logprob,
        "bytes": list(choice.piece),
    }


def _with_top(entry: TokenLogprob) -> dict[str, Any]:
    return {**_one(entry.chosen), "top_logprobs": [_one(t) for t in entry.top]}


def chat_logprobs(entries: Iterable[TokenLogprob]) -> dict[str, Any]:
    """OpenAI chat's `choices[].logprobs` (whole answer or one chunk's tokens)."""
    return {"content": [_with_top(e) for e in entries], "refusal": None}


def ollama_logprobs(entries: Iterable[TokenLogprob]) -> list[dict[str, Any]]:
    """Ollama's `logprobs` list (each line carries its own tokens')."""
    return [_with_top(e) for e in entries]


def completion_logprobs(entries: Iterable[TokenLogprob], base_offset: int) -> dict[str, Any]:
    """OpenAI legacy completions' parallel lists. `top_logprobs` maps token text to its
    logprob for the top alternatives plus the chosen token, as OpenAI documents;
    `text_offset` counts characters from the start of the prompt (no echo)."""
    tokens, values, tops, offsets = [], [], [], []
    for e in entries:
        tokens.append(token_text(e.chosen.piece))
        values.append(e.chosen.logprob)
        top = {token_text(t.piece): t.logprob for t in e.top}
        top.setdefault(tokens[-1], e.chosen.logprob)
        tops.append(top)
        offsets.append(base_offset + e.text_offset)
    return {
        "tokens": tokens,
        "token_logprobs": values,
        "top_logprobs": tops,
        "text_offset": offsets,
    }
