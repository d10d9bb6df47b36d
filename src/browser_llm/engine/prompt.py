"""A request's prompt -> tokens that fit the context, with max_tokens clamped."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Protocol

from browser_llm.core.errors import CONTEXT_LENGTH_EXCEEDED, ValidationError
from browser_llm.core.types import ChatMessage, GenerationParams
from browser_llm.engine.base import GenerationRequest
from browser_llm.engine.chat_template import ChatTemplate

__all__ = ["PreparedPrompt", "check_logit_bias", "prepare_prompt", "prompt_text"]


@dataclass(frozen=True)
class PreparedPrompt:
    tokens: list[int]
    max_tokens: int
    clamped: bool


class _Tokenizer(Protocol):
    add_bos: bool
    chat_template: ChatTemplate | None

    @property
    def context_length(self) -> int: ...

    def tokenize(self, text: str, add_special: bool) -> list[int]: ...


def prompt_text(template: ChatTemplate | None, request: GenerationRequest) -> tuple[str, bool]:
    """The text to tokenize and whether it already carries its special tokens.

    A plain prompt becomes one user turn through the model's chat template,
    unless the request is raw or the model has no template.
    """
    if request.messages is not None:
        messages: tuple[ChatMessage, ...] = request.messages
    elif request.raw or template is None:
        return request.prompt or "", False
    else:
        messages = (ChatMessage("user", request.prompt or ""),)
    if template is None:
        # No template: a plain transcript the model can continue.
        lines = [f"{m.role}: {m.content}" for m in messages]
        return "\n".join([*lines, "assistant:"]), False
    tools: list[dict[str, Any]] | None = json.loads(request.tools) if request.tools else None
    text = template.render(messages, tools=tools, variables=request.template_vars)
    # Templates that write the BOS text themselves must not get a second one.
    starts_with_bos = bool(template.bos_token) and text.startswith(template.bos_token)
    return text, starts_with_bos


def prepare_prompt(model: _Tokenizer, request: GenerationRequest) -> PreparedPrompt:
    text, has_bos = prompt_text(model.chat_template, request)
    try:
        tokens = model.tokenize(text, add_special=model.add_bos and not has_bos)
    except UnicodeEncodeError as exc:  # lone surrogates: not text llama.cpp can read
        raise ValidationError("prompt is not valid Unicode text", {"field": "prompt"}) from exc
    context = model.context_length
    if not tokens:
        raise ValidationError("prompt is empty after tokenization", {"field": "prompt"})
    if len(tokens) >= context:
        raise ValidationError(
            f"prompt is {len(tokens)} tokens; the context holds {context} "
            "(and needs room for at least one new token)",
            {
                "prompt_tokens": len(tokens),
                "context_length": context,
                "reason": CONTEXT_LENGTH_EXCEEDED,
            },
        )
    requested = request.params.max_tokens
    room = context - len(tokens)
    return PreparedPrompt(tokens, min(requested, room), clamped=requested > room)


def check_logit_bias(params: GenerationParams, n_vocab: int) -> None:
    """logit_bias names ids of this model's vocabulary (llama.cpp indexes by them)."""
    for token, _ in params.logit_bias:
        if not 0 <= token < n_vocab:
            raise ValidationError(
                f"logit_bias: {token} is not a token id of this model (0-{n_vocab - 1})",
                {"field": "logit_bias", "token": token, "n_vocab": n_vocab},
            )
