"""Whether a model thinks, read from its chat template (the GGUF header), never from its
name: the markers around its reasoning, whether the generation prompt opens the block
(DeepSeek-R1's and QwQ's templates end it with ``<think>``: the output starts inside the
reasoning), and the template variable that turns thinking off (``enable_thinking``).

Probed once per model file, by rendering the template with a one-line conversation.
"""

from __future__ import annotations

import functools
import logging
from dataclasses import dataclass
from pathlib import Path

from browser_llm.core.types import ChatMessage
from browser_llm.engine.chat_template import ChatTemplate
from browser_llm.models.gguf import InvalidGGUFError
from browser_llm.models.gguf_info import read_gguf_header
from browser_llm.service.registry import ModelRegistry
from browser_llm.service.thinking.split import ThinkMarkers

__all__ = ["ThinkPlan", "Thinking", "plan_thinking", "thinking_for", "thinking_of_template"]

logger = logging.getLogger(__name__)

# Marker pairs thinking templates use; a template must name both to count as thinking.
_MARKERS = (
    ThinkMarkers("<think>", "</think>"),
    ThinkMarkers("<thinking>", "</thinking>"),
    ThinkMarkers("<seed:think>", "</seed:think>"),
    ThinkMarkers("[THINK]", "[/THINK]"),
    ThinkMarkers("<|START_THINKING|>", "<|END_THINKING|>"),
)
# Variables templates read to turn thinking off (Qwen3: enable_thinking; DeepSeek: thinking).
_SWITCHES = ("enable_thinking", "thinking")
_PROBE = (ChatMessage("user", "hi"),)


@dataclass(frozen=True)
class Thinking:
    """A thinking model's template: its markers, whether its generation prompt opens the
    block, and the variable that turns thinking off (None: it cannot be turned off)."""

    markers: ThinkMarkers
    opens_in_prompt: bool
    switch: str | None


@dataclass(frozen=True)
class ThinkPlan:
    """One request's thinking: the split of its output (None: not split) and the template
    variables that set it."""

    markers: ThinkMarkers | None
    inside: bool  # the prompt opened the block: the output starts in the reasoning
    template_vars: tuple[tuple[str, bool], ...]


NO_THINKING = ThinkPlan(None, False, ())


def _tail(template: ChatTemplate, variables: tuple[tuple[str, bool], ...]) -> str:
    return template.render(_PROBE, variables=variables).rstrip()


def thinking_of_template(template: ChatTemplate) -> Thinking | None:
    """None: the template marks no thinking (or cannot render a plain conversation)."""
    source = template.source
    markers = next((m for m in _MARKERS if m.open in source and m.close in source), None)
    if markers is None:
        return None
    try:
        tail = _tail(template, ())
        switch = next((v for v in _SWITCHES if _tail(template, ((v, False),)) != tail), None)
    except Exception as exc:  # a template that cannot render this: treated as not thinking
        logger.warning("chat template names %s but did not render: %s", markers.open, exc)
        return None
    return Thinking(markers, tail.endswith(markers.open), switch)


@functools.lru_cache(maxsize=32)
def _file_thinking(path: str, size: int, mtime_ns: int) -> Thinking | None:
    try:
        header = read_gguf_header(Path(path))
        if not header.chat_template:
            return None
        template = ChatTemplate(header.chat_template, header.bos_text, header.eos_text)
    except (OSError, InvalidGGUFError, ValueError) as exc:
        logger.warning("cannot read the chat template of %s: %s", path, exc)
        return None
    return thinking_of_template(template)


def thinking_for(registry: ModelRegistry, model_id: str | None) -> Thinking | None:
    """The thinking of a catalog model (None: the loaded one); None: it does not think."""
    model_id = model_id or registry.loaded_id
    entry = registry.catalog.get(model_id) if model_id else None
    path = registry.store.path_for(entry) if entry is not None else None
    if path is None:
        return None
    stat = path.stat()
    return _file_thinking(str(path), stat.st_size, stat.st_mtime_ns)


def plan_thinking(thinking: Thinking | None, wanted: bool | None, constrained: bool) -> ThinkPlan:
    """`wanted`: the client's switch (None: the model's default). `constrained`: a grammar
    shapes the answer (JSON, tools) from its first token, so there is no thinking: the
    switch is set off where the template has one, and the output is not split."""
    if thinking is None:
        return NO_THINKING
    if constrained:
        return ThinkPlan(
            None, False, () if thinking.switch is None else ((thinking.switch, False),)
        )
    if wanted is False and thinking.switch is not None:
        # Turned off in the prompt; a model that opens the block anyway is still split.
        return ThinkPlan(thinking.markers, False, ((thinking.switch, False),))
    # On, or off but the template cannot turn it off: the reasoning still comes apart.
    return ThinkPlan(thinking.markers, thinking.opens_in_prompt, ())
