"""Tool calling through a model's own template (Hermes <tool_call> blocks), without a model:
the format choice, the template's rendering of tools and history, the grammar (walked by
the engine's own GBNF walker) and the parsing of answers, whole and streamed."""

from __future__ import annotations

import json
from typing import Any

import pytest

from browser_llm.core.types import ChatMessage
from browser_llm.engine.base import GenerationRequest
from browser_llm.engine.chat_template import ChatTemplate
from browser_llm.engine.process.wire import decode_request, encode_request
from browser_llm.engine.prompt import prompt_text
from browser_llm.grammar.gbnf import parse_gbnf
from browser_llm.grammar.walk import GrammarWalker
from browser_llm.service.tools.format import (
    answer_text,
    plan_conversation,
    plan_grammar,
    plan_outcome,
    template_tools,
)
from browser_llm.service.tools.generic import HistoryTurn, ToolPlan, plan_tools
from browser_llm.service.tools.hermes import HermesAnswerText, uses_hermes_format
from tests.hermes_template import HERMES_TEMPLATE

WEATHER = (
    "get_weather",
    "Current weather",
    {
        "type": "object",
        "properties": {"city": {"type": "string"}},
        "required": ["city"],
        "additionalProperties": False,
    },
)
ADD = (
    "add",
    "Add two integers",
    {
        "type": "object",
        "properties": {"a": {"type": "integer"}, "b": {"type": "integer"}},
        "required": ["a", "b"],
    },
)


def _plan(mode: str | None = "auto", parallel: bool | None = None) -> ToolPlan:
    return plan_tools([WEATHER, ADD], mode, None, parallel, "hermes")


def _accepts(grammar: str, text: str) -> bool:
    walker = GrammarWalker(parse_gbnf(grammar))
    state = walker.walk(walker.initial, text)
    return state is not None and state.accepting


def test_the_format_is_chosen_from_the_template() -> None:
    assert uses_hermes_format(HERMES_TEMPLATE)
    smollm2_like = "{% for m in messages %}<|im_start|>{{ m.role }}{% endfor %}"
    assert not uses_hermes_format(smollm2_like)
    assert not uses_hermes_format(None)
    # Mentions <tool_call> but never renders the tools: not the Hermes format.
    assert not uses_hermes_format("{{ '<tool_call>' }}")


ONE = '<tool_call>\n{"name": "get_weather", "arguments": {"city": "Paris"}}\n</tool_call>'
TWO = ONE + '\n<tool_call>\n{"name": "add", "arguments": {"a": 1, "b": 2}}\n</tool_call>'


@pytest.mark.parametrize(
    ("mode", "parallel", "text", "accepted"),
    [
        ("required", None, ONE, True),
        ("required", None, TWO, True),
        ("required", False, TWO, False),  # one call only
        ("required", None, "Sunny.", False),  # must call
        ("auto", None, "Sunny in Paris.", True),
        ("auto", None, ONE, True),
        ("auto", None, "<b>Sunny</b>", False),  # text cannot look like a block's start
        ("required", None, ONE.replace('"Paris"', "3"), False),  # off schema
        ("required", None, ONE.replace("get_weather", "rm_rf"), False),  # unknown function
    ],
)
def test_grammar_admits_exactly_the_format(
    mode: str, parallel: bool | None, text: str, accepted: bool
) -> None:
    grammar = plan_grammar(_plan(mode, parallel))
    assert grammar is not None
    assert _accepts(grammar, text) is accepted


def test_named_function_grammar_admits_only_it() -> None:
    plan = plan_tools([WEATHER, ADD], None, "add", None, "hermes")
    grammar = plan_grammar(plan)
    assert grammar is not None
    assert not _accepts(grammar, ONE)
    add = '<tool_call>\n{"name": "add", "arguments": {"a": 1, "b": 2}}\n</tool_call>'
    assert _accepts(grammar, add)


def test_answers_parse_into_calls_and_text() -> None:
    outcome = plan_outcome(_plan(), TWO)
    assert [(c.name, json.loads(c.arguments)) for c in outcome.calls] == [
        ("get_weather", {"city": "Paris"}),
        ("add", {"a": 1, "b": 2}),
    ]
    assert outcome.content is None and not outcome.errors
    assert plan_outcome(_plan(), "  Sunny.\n").content == "Sunny."
    # Cut short inside the second block: the complete first call only.
    cut = plan_outcome(_plan(), TWO[: len(ONE) + 30])
    assert [c.name for c in cut.calls] == ["get_weather"]
    assert plan_outcome(_plan("required"), "<tool_call>\n{").calls == []


def test_a_block_the_engine_closed_is_dropped_before_repeats_merge() -> None:
    """max_tokens ran out in the fifth of five identical blocks and the engine closed it:
    the closed one goes, the repeats merge, the model's call stays (issue 33 item 7)."""
    five = "\n".join([ONE] * 5)
    assert [c.name for c in plan_outcome(_plan(), five, closed=True).calls] == ["get_weather"]
    closed = TWO.replace('"a": 1, "b": 2', '"a": 0, "b": 0')  # the second closed with filler
    assert [c.name for c in plan_outcome(_plan(), closed, closed=True).calls] == ["get_weather"]
    assert plan_outcome(_plan(), ONE, closed=True).calls == []


def test_streamed_text_is_the_answer_and_calls_stream_nothing() -> None:
    stream = answer_text(_plan())
    assert isinstance(stream, HermesAnswerText)
    pieces = [" ", "Sun", "ny ", "day."]
    sent = "".join(stream.feed(p) for p in pieces)
    assert sent == "Sunny day."
    assert stream.rest("Sunny day.") == ""
    calls = answer_text(_plan())
    assert "".join(calls.feed(p) for p in ["<tool", "_call>\n{", '"name"']) == ""


def test_history_is_left_for_the_template_and_rendered_by_it() -> None:
    turns = [
        HistoryTurn("developer", "Be brief."),
        HistoryTurn("user", "Weather in Paris?"),
        HistoryTurn("assistant", "", (("call_1", "get_weather", '{"city": "Paris"}'),)),
        HistoryTurn("tool", "18 C, sunny", tool_call_id="call_1"),
    ]
    plan = _plan()
    messages = plan_conversation(turns, plan)
    assert [m.role for m in messages] == ["system", "user", "assistant", "tool"]
    assert messages[2].tool_calls == (("call_1", "get_weather", '{"city": "Paris"}'),)
    tools = template_tools(plan)
    assert tools is not None
    request = GenerationRequest(messages=tuple(messages), tools=tools)
    text, _ = prompt_text(ChatTemplate(HERMES_TEMPLATE, "", ""), request)
    # The template's own words, the functions as JSON, the call and the result.
    assert "<tools>" in text and '"name": "add"' in text
    assert '<tool_call>\n{"name": "get_weather", "arguments": {"city": "Paris"}}' in text
    assert "<tool_response>\n18 C, sunny\n</tool_response>" in text
    assert text.endswith("<|im_start|>assistant\n")


def test_tool_choice_none_gives_the_template_no_tools() -> None:
    plan = plan_tools([WEATHER], "none", None, None, "hermes")
    assert template_tools(plan) is None


def test_tool_turns_and_tools_cross_the_engine_wire() -> None:
    messages = (
        ChatMessage("user", "hi"),
        ChatMessage("assistant", "", (("c1", "f", '{"x": 1}'),)),
        ChatMessage("tool", "ok", (), "c1"),
    )
    request = GenerationRequest(messages=messages, tools='[{"type": "function"}]')
    back = decode_request(json.loads(json.dumps(encode_request(request))))
    assert back.messages == messages
    assert back.tools == request.tools
    plain = decode_request(json.loads(json.dumps(encode_request(GenerationRequest(prompt="x")))))
    assert plain.tools is None and plain.messages is None


def test_template_tojson_is_plain_json() -> None:
    # Jinja's own tojson writes \u003c for "<": a model would read other text than it
    # was trained on.
    template = ChatTemplate("{{ tools | tojson }}", "", "")
    tools: list[dict[str, Any]] = [{"description": "a < b & c"}]
    assert template.render([], tools=tools) == '[{"description": "a < b & c"}]'
