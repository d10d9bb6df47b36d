"""Refuses, by name, the OpenAI request fields this server cannot honour.

A field that would change the answer is never silently dropped: either it works
(api/openai/calls.py and the shared layer) or the request is a 400 VALIDATION_ERROR whose
`details.field` names it (OpenAI's `param`). docs/api.md lists every field.
"""

from __future__ import annotations

from browser_llm.api.openai.protocol import ChatCompletionRequest, CompletionRequest
from browser_llm.core.errors import ValidationError

__all__ = ["MAX_CHOICES", "refuse_unsupported"]

MAX_CHOICES = 16  # n: each choice is a sequence of its own (queue and slots as requests)


def _refuse(field: str, why: str) -> ValidationError:
    return ValidationError(f"{field}: {why}", {"field": field})


def refuse_unsupported(body: ChatCompletionRequest | CompletionRequest) -> None:
    if body.n is not None and not 1 <= body.n <= MAX_CHOICES:
        raise _refuse("n", f"1 to {MAX_CHOICES} choices")
    if isinstance(body, CompletionRequest):
        if body.best_of not in (None, 1):
            raise _refuse("best_of", "only best_of=1 is supported")
        if body.echo:
            raise _refuse("echo", "not supported by this server")
        if body.suffix:
            raise _refuse("suffix", "not supported by this server")
        return
    if body.functions is not None or body.function_call is not None:
        field = "functions" if body.functions is not None else "function_call"
        raise _refuse(field, "deprecated by OpenAI; send `tools` and `tool_choice` instead")
    if body.modalities is not None and body.modalities != ["text"]:
        raise _refuse("modalities", "only ['text'] is supported")
    if body.audio is not None:
        raise _refuse("audio", "audio output is not supported")
    if body.web_search_options is not None:
        raise _refuse("web_search_options", "web search is not available on a local server")
    if body.verbosity not in (None, "medium"):
        raise _refuse("verbosity", "only the default ('medium') is supported")
    if body.tool_choice is not None and not body.tools:
        raise _refuse("tool_choice", "tool_choice needs tools")
