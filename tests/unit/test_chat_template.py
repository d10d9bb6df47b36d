"""The sandboxed chat template and prompt preparation."""

from __future__ import annotations

import pytest

from browser_llm.core.errors import ValidationError
from browser_llm.core.types import ChatMessage, GenerationParams
from browser_llm.engine.base import GenerationRequest
from browser_llm.engine.chat_template import ChatTemplate
from browser_llm.engine.prompt import prepare_prompt, prompt_text

CHATML = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n"
    "{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


def test_prompt_becomes_one_user_turn() -> None:
    template = ChatTemplate(CHATML, "<s>", "</s>")
    text, has_bos = prompt_text(template, GenerationRequest(prompt="Hi"))
    assert text == "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n"
    assert not has_bos


def test_raw_prompt_is_untouched() -> None:
    template = ChatTemplate(CHATML, "<s>", "</s>")
    assert prompt_text(template, GenerationRequest(prompt="Hi", raw=True)) == ("Hi", False)


def test_template_cannot_reach_python_internals() -> None:
    evil = "{{ ''.__class__.__mro__[1].__subclasses__() }}"
    template = ChatTemplate(evil, "", "")
    with pytest.raises(ValidationError):
        template.render([ChatMessage("user", "x")])


def test_template_raise_exception_is_a_validation_error() -> None:
    template = ChatTemplate("{{ raise_exception('roles must alternate') }}", "", "")
    with pytest.raises(ValidationError, match="roles must alternate"):
        template.render([ChatMessage("user", "x")])


def test_broken_template_source_is_rejected_at_load() -> None:
    with pytest.raises(ValueError):
        ChatTemplate("{% for %}", "", "")


class _FakeTokenizer:
    add_bos = True
    chat_template = None
    context_length = 10

    def tokenize(self, text: str, add_special: bool) -> list[int]:
        return [1] * len(text.split()) + ([0] if add_special else [])


def test_prompt_too_long_names_sizes() -> None:
    request = GenerationRequest(prompt="a b c d e f g h i j", raw=True)
    with pytest.raises(ValidationError) as err:
        prepare_prompt(_FakeTokenizer(), request)
    assert err.value.details == {
        "prompt_tokens": 11,
        "context_length": 10,
        "reason": "context_length_exceeded",
    }


def test_max_tokens_is_clamped_to_room_left() -> None:
    request = GenerationRequest(prompt="a b c", raw=True, params=GenerationParams(max_tokens=100))
    prepared = prepare_prompt(_FakeTokenizer(), request)
    assert (len(prepared.tokens), prepared.max_tokens, prepared.clamped) == (4, 6, True)


def test_earlier_reasoning_is_offered_under_the_names_templates_read() -> None:
    turns = [
        ChatMessage("user", "q"),
        ChatMessage("assistant", "4", reasoning="2+2"),
        ChatMessage("user", "q2"),
    ]
    reads = "{% for m in messages %}[{{ m.reasoning_content }}|{{ m.thinking }}]{% endfor %}"
    assert ChatTemplate(reads, "", "").render(turns) == "[|][2+2|2+2][|]"
    # A template that reads neither leaves it out: the prompt is as before.
    plain = "{% for m in messages %}{{ m.role }}:{{ m.content }};{% endfor %}"
    bare = [ChatMessage(m.role, m.content) for m in turns]
    assert ChatTemplate(plain, "", "").render(turns) == ChatTemplate(plain, "", "").render(bare)
