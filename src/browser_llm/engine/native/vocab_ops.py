"""Tokenize / detokenize on the engine thread: the work items and how one is run.

They run between decode steps on the model loaded at that moment (engine thread only:
the vocabulary belongs to the llama.cpp model that thread owns and frees).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from browser_llm.core.errors import BrowserLLMError, InternalError, ModelNotLoadedError
from browser_llm.engine.native.commands import VocabOp

__all__ = ["detokenize_work", "run_vocab_op", "tokenize_work"]

logger = logging.getLogger(__name__)


def tokenize_work(text: str, add_special: bool, parse_special: bool) -> Callable[[Any], Any]:
    return lambda model: model.tokenize(text, add_special, parse_special)


def detokenize_work(
    tokens: list[int], remove_special: bool, unparse_special: bool
) -> Callable[[Any], Any]:
    return lambda model: model.detokenize(tokens, remove_special, unparse_special)


def run_vocab_op(op: VocabOp, model: Any) -> None:
    """Settles the op's future with the work's result or a domain error; never raises."""
    if model is None:
        op.done.set_exception(ModelNotLoadedError("no model is loaded; load one first"))
        return
    try:
        op.done.set_result(op.work(model))
    except BrowserLLMError as exc:
        op.done.set_exception(exc)
    except Exception:
        logger.exception("a vocabulary operation failed")
        op.done.set_exception(InternalError("could not tokenize (details in /debug/logs)"))
