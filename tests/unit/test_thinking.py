"""Whether a template thinks, where its generation prompt leaves the output, and its switch;
and what a request's switch and grammar make of it."""

from __future__ import annotations

from browser_llm.core.types import ChatMessage
from browser_llm.engine.chat_template import ChatTemplate
from browser_llm.service.thinking.plan import NO_THINKING, plan_thinking, thinking_of_template
from browser_llm.service.thinking.split import ThinkMarkers
from tests.hermes_template import HERMES_TEMPLATE
from tests.think_template import THINK_TEMPLATE

THINK = ThinkMarkers("<think>", "</think>")
# The model opens the block itself; nothing turns it off.
GENERATED = """{% for m in messages %}<|im_start|>{{ m.role }}
{{ m.content }}<|im_end|>
{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant
{% endif %}{# answers may start with <think> ... </think> #}"""


def _template(source: str) -> ChatTemplate:
    return ChatTemplate(source, "<s>", "</s>")


def test_a_template_that_opens_the_block_and_has_a_switch() -> None:
    thinking = thinking_of_template(_template(THINK_TEMPLATE))
    assert thinking is not None
    assert (thinking.markers, thinking.opens_in_prompt, thinking.switch) == (
        THINK,
        True,
        "enable_thinking",
    )


def test_the_switch_reaches_the_rendered_prompt() -> None:
    template = _template(THINK_TEMPLATE)
    messages = (ChatMessage("user", "hi"),)
    on = template.render(messages)
    off = template.render(messages, variables=(("enable_thinking", False),))
    assert on.endswith("<think>\n") and off.rstrip().endswith("</think>")


def test_a_template_where_the_model_opens_the_block() -> None:
    thinking = thinking_of_template(_template(GENERATED))
    assert thinking is not None
    assert (thinking.opens_in_prompt, thinking.switch) == (False, None)


def test_templates_without_markers_do_not_think() -> None:
    assert thinking_of_template(_template(HERMES_TEMPLATE)) is None
    assert thinking_of_template(_template("{{ messages[0].content }} <think> only")) is None


def test_a_template_that_cannot_render_the_probe_does_not_think() -> None:
    broken = "<think></think>{{ raise_exception('no') }}"
    assert thinking_of_template(_template(broken)) is None


def test_request_plans() -> None:
    thinking = thinking_of_template(_template(THINK_TEMPLATE))
    off = (("enable_thinking", False),)
    assert plan_thinking(None, None, False) == NO_THINKING
    default = plan_thinking(thinking, None, False)
    assert (default.markers, default.inside, default.template_vars) == (THINK, True, ())
    assert plan_thinking(thinking, True, False) == default
    turned_off = plan_thinking(thinking, False, False)
    assert (turned_off.markers, turned_off.inside, turned_off.template_vars) == (THINK, False, off)
    constrained = plan_thinking(thinking, None, True)
    assert (constrained.markers, constrained.template_vars) == (None, off)
    no_switch = thinking_of_template(_template(GENERATED))
    assert plan_thinking(no_switch, None, True) == NO_THINKING
    kept = plan_thinking(no_switch, False, False)  # cannot be turned off: still split
    assert (kept.markers, kept.inside) == (THINK, False)
