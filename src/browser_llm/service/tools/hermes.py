"""Tool calling through the model's own chat template, for templates in the Hermes format
(Qwen 2.5 and 3, Hermes 2/3 Pro, SmolLM3 and the many fine-tunes that copied them).

The template renders the functions (its `tools` variable), earlier calls and their results
the way the model was trained on; the model answers with one or more blocks

    <tool_call>
    {"name": "get_weather", "arguments": {"city": "Paris"}}
    </tool_call>

or, when it may answer directly (tool_choice "auto"), with plain text. The blocks are
produced under a grammar built from the functions' JSON Schemas, as in the generic format,
so every call parses and validates. docs/api.md ("Tool calling") describes both formats.
"""

from __future__ import annotations

import json
import re
from typing import Any

from browser_llm.core.types import ChatMessage
from browser_llm.service.tools.generic import (
    MAX_PARALLEL_CALLS,
    HistoryTurn,
    ToolOutcome,
    ToolPlan,
    outcome_of_calls,
)

__all__ = [
    "HermesAnswerText",
    "hermes_conversation",
    "hermes_grammar",
    "hermes_tools_json",
    "parse_hermes_output",
    "uses_hermes_format",
]

OPEN, CLOSE = "<tool_call>", "</tool_call>"
_BLOCK = re.compile(re.escape(OPEN) + r"\s*(.*?)\s*" + re.escape(CLOSE), re.DOTALL)
_ROOT = re.compile(r"(?<![\w-])root(?![\w-])")


def uses_hermes_format(template_source: str | None) -> bool:
    """Whether a chat template renders tools and asks for <tool_call> blocks."""
    return template_source is not None and OPEN in template_source and "tools" in template_source


def hermes_tools_json(plan: ToolPlan) -> str:
    """The functions as the template's `tools` variable (OpenAI's shape)."""
    return json.dumps(
        [
            {
                "type": "function",
                "function": {
                    "name": t.name,
                    "description": t.description,
                    "parameters": t.parameters,
                },
            }
            for t in plan.tools
        ],
        ensure_ascii=False,
    )


def hermes_conversation(turns: list[HistoryTurn]) -> list[ChatMessage]:
    """The conversation with its calls and results left for the template to render."""
    out = []
    for turn in turns:
        role = "system" if turn.role == "developer" else turn.role
        out.append(
            ChatMessage(role, turn.content, turn.tool_calls, turn.tool_call_id, turn.reasoning)
        )
    return out


def hermes_grammar(plan: ToolPlan, call_grammar: str) -> str:
    """The answer's grammar: <tool_call> blocks (each `call_grammar`, the GBNF of one call
    object), or for tool_choice "auto" also plain text that does not start a block."""
    rules = _ROOT.sub("hermes-call", call_grammar).rstrip("\n")
    more = MAX_PARALLEL_CALLS - 1 if plan.parallel else 0
    calls = f'hermes-block ( "\\n" hermes-block ){{0,{more}}}' if more else "hermes-block"
    head = ["root ::= hermes-calls" + (" | hermes-text" if plan.mode == "auto" else "")]
    head += [
        f"hermes-calls ::= {calls}",
        'hermes-block ::= "<tool_call>\\n" hermes-call "\\n</tool_call>"',
    ]
    if plan.mode == "auto":
        head.append("hermes-text ::= [^<\\x00] [^\\x00]*")
    return "\n".join([*head, rules]) + "\n"


def parse_hermes_output(plan: ToolPlan, text: str, closed: bool = False) -> ToolOutcome:
    """The calls in complete blocks (an unfinished last block is not a call, nor is one the
    engine `closed` at max_tokens) and the text outside them."""
    calls: list[Any] = []
    for body in _BLOCK.findall(text):
        try:
            calls.append(json.loads(body))
        except json.JSONDecodeError:
            continue  # cannot come out of the grammar; dropped rather than guessed
    if not calls:
        answer = text.strip() if plan.mode == "auto" and not text.lstrip().startswith("<") else ""
        return ToolOutcome(answer or None) if plan.mode == "auto" else ToolOutcome(None)
    return outcome_of_calls(plan, calls, closed)


class HermesAnswerText:
    """Streams a plain answer as it arrives (the grammar lets an answer that is not a call
    start with anything but "<"); a call is sent only once complete."""

    def __init__(self) -> None:
        self._text = ""
        self.sent = ""

    def feed(self, piece: str) -> str:
        self._text += piece
        answer = self._text.lstrip()
        if not answer or answer.startswith("<"):
            return ""
        new = answer[len(self.sent) :]
        self.sent = answer
        return new

    def rest(self, content: str | None) -> str:
        """What the final answer's text adds to what was sent."""
        if content is None or not content.startswith(self.sent):
            return ""
        return content[len(self.sent) :]
