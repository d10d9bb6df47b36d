"""How many tokens a prepared request's prompt is, without running it: the model's own
chat template (read from its GGUF header, as the browser engine and the cluster render
prompts) and the model's tokenizer, the model loaded on demand as a generation would
load it. Anthropic's /v1/messages/count_tokens."""

from __future__ import annotations

import functools
import logging
from pathlib import Path

from browser_llm.core.errors import ModelNotLoadedError
from browser_llm.engine.base import GenerationRequest
from browser_llm.engine.chat_template import ChatTemplate
from browser_llm.engine.prompt import prompt_text
from browser_llm.models.gguf import InvalidGGUFError
from browser_llm.models.gguf_info import read_gguf_header
from browser_llm.service.model_router import ModelRouter
from browser_llm.service.registry import ModelRegistry
from browser_llm.service.tokens import TokenService

__all__ = ["count_prompt_tokens"]

logger = logging.getLogger(__name__)


@functools.lru_cache(maxsize=8)
def _template(path: str, size: int, mtime_ns: int) -> ChatTemplate | None:
    try:
        header = read_gguf_header(Path(path))
        if not header.chat_template:
            return None
        return ChatTemplate(header.chat_template, header.bos_text, header.eos_text)
    except (OSError, InvalidGGUFError, ValueError) as exc:
        logger.warning("cannot read the chat template of %s: %s", path, exc)
        return None


async def count_prompt_tokens(
    registry: ModelRegistry,
    router: ModelRouter,
    tokens: TokenService,
    request: GenerationRequest,
    model_id: str | None,
) -> tuple[str, int]:
    """(model id, prompt tokens) with the same template and tokenizer a generation uses.
    `model_id`: resolved by the router (an unknown name was its 404); None: the loaded."""
    model_id = model_id or registry.loaded_id
    if model_id is None:
        raise ModelNotLoadedError("no model is loaded; load one first")
    # The tokenizer is the model's own: a model not loaded yet is loaded, as for a generation.
    await router.ensure_loaded(model_id, request.request_id)
    entry = registry.catalog.get(model_id)
    path = registry.store.path_for(entry) if entry is not None else None
    template = None
    if path is not None:
        stat = path.stat()
        template = _template(str(path), stat.st_size, stat.st_mtime_ns)
    text, has_bos = prompt_text(template, request)
    counted = await tokens.tokenize(text, add_special=not has_bos, parse_special=True)
    if counted.model_id != model_id:  # several loaded models: the default engine's is another
        raise ModelNotLoadedError(f"model '{model_id}' is not the model that counts tokens now")
    return model_id, len(counted.tokens)
