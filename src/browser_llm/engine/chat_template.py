"""Renders a model's chat template (Jinja, read from the GGUF) in a sandbox.

A model file is untrusted input: its template runs in Jinja's immutable
sandbox, with no access to Python internals, and a bounded output size.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any, NoReturn

from jinja2 import TemplateError
from jinja2.exceptions import SecurityError
from jinja2.sandbox import ImmutableSandboxedEnvironment

from browser_llm.core.errors import ValidationError
from browser_llm.core.types import ChatMessage

__all__ = ["ChatTemplate"]

_MAX_RENDERED_CHARS = 4_000_000


def _tojson(value: Any, indent: int | None = None, ensure_ascii: bool = False) -> str:
    # Plain JSON as model templates expect (Jinja's own tojson escapes <, > and & for
    # HTML, which would change the prompt a model was trained on).
    return json.dumps(value, ensure_ascii=ensure_ascii, indent=indent)


def _arguments(text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text  # the client's own text, kept as it was


def _message(m: ChatMessage) -> dict[str, Any]:
    out: dict[str, Any] = {"role": m.role, "content": m.content}
    if m.tool_calls:
        out["tool_calls"] = [
            {"id": i, "type": "function", "function": {"name": n, "arguments": _arguments(a)}}
            for i, n, a in m.tool_calls
        ]
    if m.tool_call_id is not None:
        out["tool_call_id"] = m.tool_call_id
    if m.reasoning:  # the names thinking templates read (Qwen3, GLM: the first; gpt-oss)
        out["reasoning_content"] = out["thinking"] = m.reasoning
    return out


def _raise_exception(message: str) -> NoReturn:
    raise ValidationError(f"chat template rejected the conversation: {message}")


_MAX_INT_BITS = 4096


def _size(value: Any) -> int:
    if isinstance(value, str | bytes | list | tuple):
        return len(value)
    return 1


class _BoundedSandbox(ImmutableSandboxedEnvironment):
    """The immutable sandbox, with `*`, `**` and `+` checked before they run: a template
    such as ``{{ 'a' * 10**10 }}`` would otherwise allocate gigabytes (or, folded as a
    constant, hang the model load) before any output-size check could see it."""

    intercepted_binops = frozenset({"*", "**", "+"})

    def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
        ints = [isinstance(v, int) and not isinstance(v, bool) for v in (left, right)]
        if operator == "**" and all(ints):
            if right > 0 and abs(left) > 1 and right * abs(left).bit_length() > _MAX_INT_BITS:
                raise SecurityError("chat template: number too large")
        elif operator == "*" and all(ints):
            if left.bit_length() + right.bit_length() > _MAX_INT_BITS:
                raise SecurityError("chat template: number too large")
        elif operator == "*" and any(ints):
            seq, times = (left, right) if ints[1] else (right, left)
            if _size(seq) * times > _MAX_RENDERED_CHARS:
                raise SecurityError("chat template: repeated text too large")
        elif operator == "+" and _size(left) + _size(right) > _MAX_RENDERED_CHARS:
            raise SecurityError("chat template: text too large")
        return super().call_binop(context, operator, left, right)


class ChatTemplate:
    """A compiled chat template plus the special-token texts it may reference."""

    def __init__(self, source: str, bos_token: str, eos_token: str) -> None:
        env = _BoundedSandbox(
            trim_blocks=True, lstrip_blocks=True, autoescape=False, keep_trailing_newline=True
        )
        env.globals["raise_exception"] = _raise_exception
        env.filters["tojson"] = _tojson
        self.source = source
        try:
            self._template = env.from_string(source)
        except (TemplateError, ValueError, OverflowError, MemoryError) as exc:
            raise ValueError(f"invalid chat template: {exc}") from exc
        self.bos_token = bos_token
        self.eos_token = eos_token

    def render(
        self,
        messages: Sequence[ChatMessage],
        add_generation_prompt: bool = True,
        tools: list[dict[str, Any]] | None = None,
        variables: Sequence[tuple[str, bool]] = (),
    ) -> str:
        """`variables`: switches the template reads (`enable_thinking`), set by the service."""
        context: dict[str, Any] = {
            **dict(variables),
            "messages": [_message(m) for m in messages],
            "tools": tools,
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
