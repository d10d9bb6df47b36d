"""A chat template in the Hermes tool format, written for these tests (ChatML, the tokens
SmolLM2 knows), and a copy of the default model that carries it: the real engine then
renders tools through a model's own template, as it would for Qwen or Hermes models."""

from __future__ import annotations

from pathlib import Path

from tests.modelfiles import smollm2_path
from tests.reliability.gguf_files import with_chat_template

__all__ = ["HERMES_TEMPLATE", "hermes_model"]

HERMES_TEMPLATE = """\
{%- set first = messages[0] if messages else none -%}
{%- if tools -%}
<|im_start|>system
{% if first and first.role == 'system' %}{{ first.content }}

{% endif %}You can call functions. Their signatures:
<tools>
{% for tool in tools %}{{ tool | tojson }}
{% endfor %}</tools>
To call one, reply with <tool_call>
{"name": "<name>", "arguments": {<arguments>}}
</tool_call><|im_end|>
{% elif first and first.role == 'system' -%}
<|im_start|>system
{{ first.content }}<|im_end|>
{% endif -%}
{%- for message in messages -%}
{%- if message.role == 'system' -%}
{%- elif message.role == 'tool' -%}
<|im_start|>user
<tool_response>
{{ message.content }}
</tool_response><|im_end|>
{% elif message.role == 'assistant' and message.tool_calls -%}
<|im_start|>assistant
{% if message.content %}{{ message.content }}
{% endif %}{% for call in message.tool_calls %}<tool_call>
{"name": "{{ call.function.name }}", "arguments": {{ call.function.arguments | tojson }}}
</tool_call>
{% endfor %}<|im_end|>
{% else -%}
<|im_start|>{{ message.role }}
{{ message.content }}<|im_end|>
{% endif -%}
{%- endfor -%}
{%- if add_generation_prompt -%}
<|im_start|>assistant
{% endif -%}
"""


def hermes_model(folder: Path) -> Path:
    """The default model's weights with HERMES_TEMPLATE as its chat template."""
    folder.mkdir(parents=True, exist_ok=True)
    return with_chat_template(smollm2_path(), folder / "smollm2-hermes.gguf", HERMES_TEMPLATE)
