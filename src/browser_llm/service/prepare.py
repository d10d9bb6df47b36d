"""A neutral call -> the engine's request: the model resolved once, the tool format and
plan, the grammar (its errors naming the dialect's own field), the conversation and the
logprobs rule, settled in one place for every dialect."""

from __future__ import annotations

from dataclasses import dataclass, replace

from browser_llm.core.errors import ValidationError
from browser_llm.core.types import ChatMessage
from browser_llm.engine.base import GenerationRequest
from browser_llm.grammar.check import json_constraint
from browser_llm.service.calls import Call, OutputFormat
from browser_llm.service.model_router import ModelRouter
from browser_llm.service.registry import ModelRegistry
from browser_llm.service.thinking.plan import NO_THINKING, ThinkPlan, plan_thinking, thinking_for
from browser_llm.service.tools.format import (
    plan_conversation,
    plan_grammar,
    template_tools,
    tool_format_for,
)
from browser_llm.service.tools.generic import ToolPlan, plan_tools, render_conversation

__all__ = ["Prepared", "Preparer"]


@dataclass(frozen=True)
class Prepared:
    request: GenerationRequest
    plan: ToolPlan | None  # an active tool plan: the answer is read for calls
    keep_alive_s: float | None
    loaded: bool  # its model was serving already (else the start may include a load)
    think: ThinkPlan = NO_THINKING  # how the output splits into reasoning and answer


class Preparer:
    def __init__(self, registry: ModelRegistry, router: ModelRouter) -> None:
        self._registry = registry
        self._router = router

    def resolve(self, name: str | None) -> str | None:
        """The catalog id a client's model name means (404 if none); None: the loaded one."""
        return self._router.resolve(name)

    def prepare(self, call: Call, model_id: str | None) -> Prepared:
        """Raises the request's 400 before anything runs."""
        plan = self._plan(call, model_id)
        active = plan if plan is not None and plan.active else None
        if active is not None and call.output is not None and call.tools is not None:
            hint = "; send tool_choice 'none' to use it" if call.tools.has_choice else ""
            raise ValidationError(
                f"{call.output.field}: cannot be combined with tools (the tool-call format is "
                f"JSON already){hint}",
                {"field": call.output.field},
            )
        grammar = plan_grammar(active) if active is not None else _grammar(call.output)
        think = self._think(call, model_id, grammar is not None)
        request = GenerationRequest(
            prompt=call.prompt,
            messages=self._messages(call, plan),
            raw=call.raw,
            params=replace(call.params, grammar=grammar),
            request_id=call.request_id,
            engine=call.engine,
            model=model_id,
            submitted_at=call.submitted_at,
            buffered=not call.stream,
            tools=template_tools(plan) if plan is not None else None,
            logprobs=call.logprobs if active is None else None,  # tool answers: none (docs/api.md)
            template_vars=think.template_vars,
        )
        loaded = model_id is None or self._registry.serves(model_id)
        return Prepared(request, active, call.keep_alive_s, loaded, think)

    def _think(self, call: Call, model_id: str | None, constrained: bool) -> ThinkPlan:
        if call.raw:  # the client wrote the template: the output is returned as generated
            return NO_THINKING
        thinking = thinking_for(self._registry, model_id)
        if thinking is None and call.thinking:
            raise ValidationError(
                f"think: model '{model_id or self._registry.loaded_id}' does not think (its "
                "chat template marks no reasoning); leave it unset or false",
                {"field": "think"},
            )
        return plan_thinking(thinking, call.thinking, constrained)

    def _plan(self, call: Call, model_id: str | None) -> ToolPlan | None:
        wanted = call.tools
        if wanted is None or not wanted.tools:
            return None
        fmt = tool_format_for(self._registry, model_id)
        return plan_tools(
            list(wanted.tools), wanted.choice, wanted.named, wanted.parallel, fmt, wanted.id_prefix
        )

    @staticmethod
    def _messages(call: Call, plan: ToolPlan | None) -> tuple[ChatMessage, ...] | None:
        if call.turns is None:
            return None
        if plan is None:
            return tuple(render_conversation(list(call.turns), None))
        return tuple(plan_conversation(list(call.turns), plan))


def _grammar(output: OutputFormat | None) -> str | None:
    if output is None:
        return None
    return json_constraint(output.json_mode, output.schema, output.where)
