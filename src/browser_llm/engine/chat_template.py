"""Renders a model's chat template (Jinja, read from the GGUF) in a sandbox.

A model file is untrusted input: its template runs in Jinja's immutable
sandbox, with no access to Python internals, and a bounded output size.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NoReturn

from jinja2 import TemplateError
from jinja2.sandbox import ImmutableSandboxedEnvironment

from browser_llm.core.errors import ValidationError
from browser_llm.core.types import ChatMessage

__all__ = ["ChatTemplate"]

_MAX_RENDERED_CHARS = 4_000_000


def _raise_exception(message: str) -> NoReturn:
    raise ValidationError(f"chat template rejected the conversation: {message}")


class ChatTemplate:
    """A compiled chat template plus the special-token texts it may reference."""

    def __init__(self, source: str, bos_token: str, eos_token: str) -> None:
        env = ImmutableSandboxedEnvironment(
            trim_blocks=True, lstrip_blocks=True, autoescape=False, keep_trailing_newline=True
        )
        env.globals["raise_exception"] = _raise_exception
        try:
            self._template = env.from_string(source)
        except TemplateError as exc:
            raise ValueError(f"invalid chat template: {exc}") from exc
        self.bos_token = bos_token
        self.eos_token = eos_token

    def render(self, messages: Sequence[ChatMessage], add_generation_prompt: bool = True) -> str:
        context: dict[str, Any] = {
            "messages": [{"role": m.role, "content": m.content} for m in messages],
            "add_generation_prompt": add_generation_prompt,
            "bos_token": self.bos_token,
            "eos_token": self.eos_token,
        }
        try:
            text = self._template.render(**context)
        except ValidationError:
            raise
        except Exception as exc:  # a broken template must not become a 500
            raise ValidationError(f"chat template failed to render: {exc}") from exc
        if len(text) > _MAX_RENDERED_CHARS:
            raise ValidationError("rendered chat prompt is too large")
        return text
