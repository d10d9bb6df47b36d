"""Tool calling in the generic format: any model, any chat template.

The tools and the answer format go into the system turn; the model answers with one
JSON object, produced under a grammar built from the functions' JSON Schemas, so
every call parses and names a real function with arguments that match its schema:

    {"tool_calls": [{"name": "get_weather", "arguments": {"city": "Paris"}}]}
    {"response": "plain answer"}                      (tool_choice "auto" only)

Earlier calls and their results are put back into the conversation in the same
format (results as user turns, which every chat template accepts). docs/api.md
("Tool calling") describes it for users.
"""

from __future__ import annotations

import json
import re
import uuid
from dataclasses import dataclass, field
from typing import Any, Literal

import jsonschema

from browser_llm.core.errors import ValidationError
from browser_llm.core.types import ChatMessage

__all__ = [
    "AnswerText",
    "HistoryTurn",
    "ResponseText",
    "Tool",
    "ToolCall",
    "ToolFormat",
    "ToolOutcome",
    "ToolPlan",
    "outcome_of_calls",
    "parse_tool_output",
    "plan_tools",
    "render_conversation",
]

MAX_PARALLEL_CALLS = 8
Mode = Literal["none", "auto", "required"]
# generic: the format above, for any template; hermes: the model's own template renders
# the tools and the model answers in <tool_call> blocks (service/tools/hermes.py).
ToolFormat = Literal["generic", "hermes"]


@dataclass(frozen=True)
class Tool:
    name: str
    description: str
    parameters: dict[str, Any]


@dataclass(frozen=True)
class ToolCall:
    id: str
    name: str
    arguments: str  # a JSON object, as OpenAI sends it


@dataclass(frozen=True)
class ToolPlan:
    tools: tuple[Tool, ...]
    mode: Mode
    allowed: tuple[str, ...]  # the functions the model may call now
    parallel: bool
    format: ToolFormat = "generic"
    id_prefix: str = "call_"  # the calls' ids, in the dialect's form (Anthropic: toolu_)

    @property
    def active(self) -> bool:
        return self.mode != "none"

    def call_schema(self) -> dict[str, Any]:
        """The JSON Schema of one call: {"name": ..., "arguments": ...}."""
        by_name = {t.name: t for t in self.tools}
        calls = [
            {
                "type": "object",
                "properties": {"name": {"const": name}, "arguments": by_name[name].parameters},
                "required": ["name", "arguments"],
                "additionalProperties": False,
            }
            for name in self.allowed
        ]
        return calls[0] if len(calls) == 1 else {"anyOf": calls}

    def output_schema(self) -> dict[str, Any] | None:
        """The JSON Schema of the model's answer in the generic format (None: free text)."""
        if not self.active:
            return None
        call_list = {
            "type": "object",
            "properties": {
                "tool_calls": {
                    "type": "array",
                    "items": self.call_schema(),
                    "minItems": 1,
                    "maxItems": MAX_PARALLEL_CALLS if self.parallel else 1,
                }
            },
            "required": ["tool_calls"],
            "additionalProperties": False,
        }
        if self.mode == "required":
            return call_list
        answer = {
            "type": "object",
            "properties": {"response": {"type": "string"}},
            "required": ["response"],
            "additionalProperties": False,
        }
        return {"anyOf": [call_list, answer]}

    def instructions(self) -> str:
        described = [
            {"name": t.name, "description": t.description, "parameters": t.parameters}
            for t in self.tools
            if t.name in self.allowed
        ]
        lines = [
            "You can call these functions (their parameters are JSON Schema):",
            json.dumps(described, ensure_ascii=False),
            "Answer with one JSON object and nothing else.",
            'To call functions: {"tool_calls": [{"name": "<function name>", '
            '"arguments": {<the arguments>}}]}',
        ]
        if self.mode == "auto":
            lines.append('To answer the user directly: {"response": "<your answer>"}')
        lines.append('Function results come back as {"tool_response": {...}}.')
        return "\n".join(lines)


def _parameters(raw: dict[str, Any] | None, name: str) -> dict[str, Any]:
    schema = raw if raw is not None else {"type": "object", "properties": {}}
    try:
        jsonschema.validators.validator_for(schema).check_schema(schema)
    except jsonschema.SchemaError as exc:
        raise ValidationError(
            f"tools: the parameters of '{name}' are not a valid JSON Schema: {exc.message}",
            {"field": "tools"},
        ) from exc
    return schema


def plan_tools(
    tools: list[tuple[str, str, dict[str, Any] | None]],
    choice: str | None,
    named: str | None,
    parallel: bool | None,
    fmt: ToolFormat = "generic",
    id_prefix: str = "call_",
) -> ToolPlan:
    """tools: (name, description, parameters); choice: none/auto/required; named: a
    function the model must call (tool_choice {"type": "function", ...})."""
    defined = tuple(Tool(n, d, _parameters(p, n)) for n, d, p in tools)
    names = [t.name for t in defined]
    if len(set(names)) != len(names):
        raise ValidationError("tools: function names must be unique", {"field": "tools"})
    if named is not None:
        if named not in names:
            raise ValidationError(
                f"tool_choice: no function named '{named}' in tools", {"field": "tool_choice"}
            )
        return ToolPlan(defined, "required", (named,), bool(parallel), fmt, id_prefix)
    mode: Mode = "auto" if choice is None else choice  # type: ignore[assignment]
    if mode not in ("none", "auto", "required"):
        raise ValidationError(f"tool_choice: unknown value {choice!r}", {"field": "tool_choice"})
    return ToolPlan(defined, mode, tuple(names), parallel is not False, fmt, id_prefix)


@dataclass(frozen=True)
class HistoryTurn:
    """One message of an OpenAI conversation, as the route received it."""

    role: str
    content: str
    tool_calls: tuple[tuple[str, str, str], ...] = ()  # (id, name, arguments)
    tool_call_id: str | None = None
    reasoning: str = ""  # an assistant turn's reasoning, sent back (ChatMessage.reasoning)


def _arguments_value(arguments: str) -> Any:
    try:
        return json.loads(arguments)
    except json.JSONDecodeError:
        return arguments  # the client's own text: kept as a string


def render_conversation(turns: list[HistoryTurn], plan: ToolPlan | None) -> list[ChatMessage]:
    """The conversation as plain role/content turns any chat template can render."""
    names = {call_id: name for t in turns for call_id, name, _ in t.tool_calls}
    out: list[ChatMessage] = []
    for turn in turns:
        role = "system" if turn.role == "developer" else turn.role
        if turn.role == "tool":
            result = {"tool_call_id": turn.tool_call_id, "content": turn.content}
            if turn.tool_call_id in names:
                result["name"] = names[turn.tool_call_id]
            text = json.dumps({"tool_response": result}, ensure_ascii=False)
            out.append(ChatMessage("user", text))
        elif turn.role == "assistant" and turn.tool_calls:
            calls = [{"name": n, "arguments": _arguments_value(a)} for _, n, a in turn.tool_calls]
            text = json.dumps({"tool_calls": calls})
            out.append(ChatMessage("assistant", text, reasoning=turn.reasoning))
        elif turn.role == "assistant" and plan is not None and plan.active:
            # Earlier plain answers in the format the model is asked to use now.
            text = json.dumps({"response": turn.content})
            out.append(ChatMessage("assistant", text, reasoning=turn.reasoning))
        else:
            out.append(ChatMessage(role, turn.content, reasoning=turn.reasoning))
    if plan is not None and plan.active:
        if out and out[0].role == "system":
            out[0] = ChatMessage("system", out[0].content + "\n\n" + plan.instructions())
        else:
            out.insert(0, ChatMessage("system", plan.instructions()))
    return out


@dataclass
class ToolOutcome:
    """What the model's answer means: text for the user, or calls (validated)."""

    content: str | None
    calls: list[ToolCall] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)  # arguments that broke their schema


_CALLS_START = re.compile(r'\s*\{\s*"tool_calls"\s*:\s*\[\s*')


def _complete_calls(text: str) -> list[Any]:
    """The calls that were complete in an answer cut short by max_tokens."""
    match = _CALLS_START.match(text)
    if match is None:
        return []
    decoder, pos = json.JSONDecoder(), match.end()
    calls: list[Any] = []
    while True:
        try:
            call, pos = decoder.raw_decode(text, pos)
        except json.JSONDecodeError:
            return calls
        calls.append(call)
        rest = text[pos:].lstrip()
        if not rest.startswith(","):
            return calls
        pos = len(text) - len(rest) + 1
        pos += len(text[pos:]) - len(text[pos:].lstrip())


def parse_tool_output(
    plan: ToolPlan, text: str, closed: bool = False, closing: str = ""
) -> ToolOutcome:
    """`closed`: the engine closed the JSON at max_tokens (Completion.closed_early), adding
    `closing` (Completion.closing) to the model's text."""
    try:
        value = json.loads(text)
    except json.JSONDecodeError:
        # Cut short (max_tokens): the calls complete so far, or the answer's text so far.
        calls: list[Any] | None = _complete_calls(text)
        if not calls:
            return ToolOutcome(ResponseText().feed(text) if plan.mode == "auto" else None)
        value = {"tool_calls": calls}
    if isinstance(value, dict) and isinstance(value.get("response"), str):
        return ToolOutcome(value["response"])
    found = value.get("tool_calls") if isinstance(value, dict) else None
    found = found if isinstance(found, list) else []
    if closed and closing and text.endswith(closing):
        # Closing only the list (`]}`) after the model's last call leaves that call whole.
        closed = len(_complete_calls(text[: len(text) - len(closing)])) < len(found)
    return outcome_of_calls(plan, found, closed)


def outcome_of_calls(plan: ToolPlan, found: list[Any], closed: bool = False) -> ToolOutcome:
    """The calls, each checked against its function's schema (errors listed). `closed`: the
    engine ended the answer at max_tokens inside the last call and closed it with filler
    values: that call is not the model's and is dropped, the complete ones before it kept."""
    if closed:
        # Before the de-duplication: the closed call may equal a complete one before it.
        found = found[:-1]
    # A small model repeats itself: one call per distinct call.
    unique = {json.dumps(c, sort_keys=True): c for c in found}
    calls = [c for c in unique.values() if isinstance(c, dict)]
    outcome = ToolOutcome(None)
    schemas = {t.name: t.parameters for t in plan.tools}
    for call in calls:
        name, arguments = call.get("name"), call.get("arguments")
        if name not in schemas:
            outcome.errors.append(f"unknown function {name!r}")
            continue
        validator = jsonschema.validators.validator_for(schemas[name])(schemas[name])
        outcome.errors += [f"{name}: {e.message}" for e in validator.iter_errors(arguments)]
        outcome.calls.append(
            ToolCall(
                id=f"{plan.id_prefix}{uuid.uuid4().hex[:24]}",
                name=name,
                arguments=json.dumps(arguments, ensure_ascii=False),
            )
        )
    return outcome


_RESPONSE_START = re.compile(r'\s*\{\s*"response"\s*:\s*"')
_PARTIAL_ESCAPE = re.compile(
    r"(\\u[0-9a-fA-F]{0,3}|\\u[dD][89abAB][0-9a-fA-F]{2}(\\u?[0-9a-fA-F]{0,3})?|\\)$"
)


class ResponseText:
    """Streams the text of {"response": "..."} as the JSON arrives.

    feed() takes the whole output so far and returns all of the answer text that is
    certain (escapes and surrogate pairs complete); deltas are what it added.
    """

    def __init__(self) -> None:
        self.sent = ""

    @staticmethod
    def is_response(text: str) -> bool | None:
        """True/False once the output shows which kind of answer it is; None before."""
        stripped = text.lstrip()
        if not stripped:
            return None
        if not stripped.startswith("{"):
            return False
        key = stripped[1:].lstrip()
        for candidate in ('"response"', '"tool_calls"'):
            if len(key) < len(candidate) and candidate.startswith(key):
                return None  # still open: '"', '"res', ...
        return key.startswith('"response"')

    def feed(self, text: str) -> str:
        match = _RESPONSE_START.match(text)
        if match is None:
            return ""
        body = text[match.end() :]
        end = _string_end(body)
        body = body[:end] if end is not None else _PARTIAL_ESCAPE.sub("", body)
        try:
            decoded = json.loads('"' + body + '"')
        except json.JSONDecodeError:
            return self.sent  # not decodable yet: nothing new
        if decoded.startswith(self.sent):
            self.sent = decoded
        return self.sent


class AnswerText:
    """The plain answer inside a tool-format answer, as the pieces arrive: `feed` returns the
    new text of {"response": "..."} (nothing while it could still be a call); `sent` is
    everything returned so far."""

    def __init__(self) -> None:
        self._text = ""
        self._answer = ResponseText()
        self._branch: bool | None = None

    @property
    def sent(self) -> str:
        return self._answer.sent

    def feed(self, piece: str) -> str:
        self._text += piece
        if self._branch is None:
            self._branch = ResponseText.is_response(self._text)
        if not self._branch:
            return ""
        before = len(self._answer.sent)
        return self._answer.feed(self._text)[before:]

    def rest(self, content: str | None) -> str:
        """What the final answer's text adds to what was sent."""
        if content is None or not content.startswith(self.sent):
            return ""
        return content[len(self.sent) :]


def _string_end(body: str) -> int | None:
    """Index of the closing quote of a JSON string body, if it has arrived."""
    escaped = False
    for i, char in enumerate(body):
        if escaped:
            escaped = False
        elif char == "\\":
            escaped = True
        elif char == '"':
            return i
    return None
