"""How the engine sizes its llama.cpp context. No llama.cpp import: the server
process builds this and hands it to the engine process."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["ContextConfig"]


@dataclass(frozen=True)
class ContextConfig:
    context_size: int
    batch_size: int
    threads: int
    gpu_layers: int
    max_sequences: int
    flash_attn: str = "auto"  # auto | on | off
    prefix_cache: bool = True  # a finished sequence's KV cells stay for the next request
    adaptive_threads: bool = True  # fewer threads while other processes hold cores
    # The prompt cache on disk (engine/native/kv/prompt_cache.py): off when bytes is 0.
    prompt_cache_dir: str = ""
    prompt_cache_bytes: int = 0
    prompt_cache_min_tokens: int = 256
    # Drafts looked up in each sequence's prompt and output, verified in the step's
    # decode (engine/native/speculator.py).
    speculation: bool = False
    # JSON output: identical array items allowed in a row (grammar/repeated_items.py; 0: any).
    json_repeat_limit: int = 3
