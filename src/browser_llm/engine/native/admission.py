"""A request checked against the loaded model before it may queue or run."""

from __future__ import annotations

from browser_llm.core.errors import ValidationError
from browser_llm.engine.base import GenerationRequest
from browser_llm.engine.native.model import LlamaModel
from browser_llm.engine.native.sampling import grammar_compiles
from browser_llm.engine.prompt import PreparedPrompt, check_logit_bias, prepare_prompt
from browser_llm.grammar.closing import ClosingCatalog

__all__ = ["admit"]


def admit(
    model: LlamaModel, closings: ClosingCatalog | None, request: GenerationRequest
) -> PreparedPrompt:
    """The request's prompt tokenized and its options checked; raises BrowserLLMError.

    The prompt first: a prompt the context cannot hold is refused before any grammar
    work (agents send long prompts with large tool grammars)."""
    prepared = prepare_prompt(model, request)
    check_logit_bias(request.params, model.n_vocab)
    grammar = request.params.grammar
    if grammar is not None and not grammar_compiles(model.vocab, grammar):
        raise ValidationError("the JSON constraint could not be compiled by llama.cpp")
    if grammar is not None and closings is not None:
        closings.check_budget(grammar, prepared.max_tokens)
    return prepared
