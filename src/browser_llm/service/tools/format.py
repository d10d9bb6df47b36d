"""Which tool-call format a model gets, and the format-specific steps behind one interface:
the conversation, the grammar, the answer's parsing and its streamed text.

A model whose chat template renders tools in the Hermes format gets it
(service/tools/hermes.py); every other model gets the generic format
(service/tools/generic.py). The template is read from the model file's header, so the choice
is known before the request reaches the engine (it is the template the engine renders).
"""

from __future__ import annotations

import functools
import logging
from pathlib import Path
from typing import Protocol

from browser_llm.core.types import ChatMessage
from browser_llm.grammar.check import SchemaField, json_constraint
from browser_llm.models.gguf import InvalidGGUFError
from browser_llm.models.gguf_info import read_gguf_header
from browser_llm.service.registry import ModelRegistry
from browser_llm.service.tools.generic import (
    AnswerText,
    HistoryTurn,
    ToolFormat,
    ToolOutcome,
    ToolPlan,
    parse_tool_output,
    render_conversation,
)
from browser_llm.service.tools.hermes import (
    HermesAnswerText,
    hermes_conversation,
    hermes_grammar,
    hermes_tools_json,
    parse_hermes_output,
    uses_hermes_format,
)

__all__ = [
    "StreamedAnswer",
    "answer_text",
    "plan_conversation",
    "plan_grammar",
    "plan_outcome",
    "template_tools",
    "tool_format_for",
]

logger = logging.getLogger(__name__)

# How grammar errors name a function schema, in every dialect.
TOOL_PARAMETERS = SchemaField("tools: a function's parameters", "tools")


class StreamedAnswer(Protocol):
    def feed(self, piece: str) -> str: ...

    def rest(self, content: str | None) -> str: ...


@functools.lru_cache(maxsize=32)
def _file_format(path: str, size: int, mtime_ns: int) -> ToolFormat:
    try:
        template = read_gguf_header(Path(path)).chat_template
    except (OSError, InvalidGGUFError) as exc:
        logger.warning("cannot read the chat template of %s: %s", path, exc)
        return "generic"
    return "hermes" if uses_hermes_format(template) else "generic"


def tool_format_for(registry: ModelRegistry, model_id: str | None) -> ToolFormat:
    """The format for a catalog model (None: the loaded one)."""
    model_id = model_id or registry.loaded_id
    entry = registry.catalog.get(model_id) if model_id else None
    path = registry.store.path_for(entry) if entry is not None else None
    if path is None:
        return "generic"
    stat = path.stat()
    return _file_format(str(path), stat.st_size, stat.st_mtime_ns)


def plan_conversation(turns: list[HistoryTurn], plan: ToolPlan) -> list[ChatMessage]:
    if plan.format == "hermes":
        return hermes_conversation(turns)
    return render_conversation(turns, plan)


def template_tools(plan: ToolPlan) -> str | None:
    """The functions for the template to render (None: the prompt carries them already)."""
    return hermes_tools_json(plan) if plan.format == "hermes" and plan.active else None


def plan_grammar(plan: ToolPlan, where: SchemaField = TOOL_PARAMETERS) -> str | None:
    """The grammar of the model's answer; a ValidationError (naming `where`) for a function
    schema the grammar cannot enforce."""
    if plan.format == "hermes":
        call = json_constraint(False, plan.call_schema(), where)
        assert call is not None
        return hermes_grammar(plan, call)
    return json_constraint(False, plan.output_schema(), where)


def plan_outcome(plan: ToolPlan, text: str, closed: bool = False, closing: str = "") -> ToolOutcome:
    """`closed`: the engine closed the answer at max_tokens with `closing` (the end of
    `text`); a call it closed is dropped."""
    if plan.format == "hermes":
        return parse_hermes_output(plan, text, closed)
    return parse_tool_output(plan, text, closed, closing)


def answer_text(plan: ToolPlan) -> StreamedAnswer:
    return HermesAnswerText() if plan.format == "hermes" else AnswerText()
