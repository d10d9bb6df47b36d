"""A chat template that marks thinking, written for these tests (ChatML, the tokens SmolLM2
knows, with Qwen3's `enable_thinking` switch and its generation prompt that opens the
`<think>` block), and a copy of the default model that carries it."""

from __future__ import annotations

from pathlib import Path

from tests.modelfiles import smollm2_path
from tests.reliability.gguf_files import with_chat_template

__all__ = ["HISTORY_TEMPLATE", "THINK_TEMPLATE", "think_history_model", "think_model"]

THINK_TEMPLATE = """\
{%- for message in messages -%}
<|im_start|>{{ message.role }}
{{ message.content }}<|im_end|>
{% endfor -%}
{%- if add_generation_prompt -%}
<|im_start|>assistant
{% if enable_thinking is defined and enable_thinking is false -%}
<think>

</think>

{% else -%}
<think>
{% endif -%}
{%- endif -%}
"""


# The same, rendering an earlier assistant turn's reasoning as Qwen3's template does (from
# `reasoning_content`), so reasoning sent back in the history reaches the prompt.
HISTORY_TEMPLATE = THINK_TEMPLATE.replace(
    "<|im_start|>{{ message.role }}\n",
    "<|im_start|>{{ message.role }}\n"
    "{% if message.reasoning_content %}<think>\n{{ message.reasoning_content }}\n</think>\n\n"
    "{% endif %}",
)


def think_model(folder: Path) -> Path:
    """The default model's weights with THINK_TEMPLATE as its chat template."""
    folder.mkdir(parents=True, exist_ok=True)
    return with_chat_template(smollm2_path(), folder / "smollm2-think.gguf", THINK_TEMPLATE)


def think_history_model(folder: Path) -> Path:
    """The default model's weights with HISTORY_TEMPLATE."""
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / "smollm2-think-history.gguf"
    return with_chat_template(smollm2_path(), target, HISTORY_TEMPLATE)
