"""The prompt cache on disk, engine side: llama.cpp's per-sequence state API around
engine/prompt_store.py (files, index, eviction). Engine thread only.

When a long prompt has been read, its sequence's KV cells are copied out (on the engine
thread: a memcpy) and handed to the store, whose own thread writes the file. A later
request whose prompt starts with a saved prefix - after a restart, a model swap or its
slot's reuse - gets those cells back instead of reading the prefix again. The same rule
as a slot's prefix reuse (engine/native/kv/slots.py `reusable`) decides how many tokens a
saved prompt gives, so the output is the one a fresh read gives.
"""

from __future__ import annotations

import ctypes
import logging
import time
from pathlib import Path

import llama_cpp

from browser_llm.engine.config import ContextConfig
from browser_llm.engine.native.kv.placement import KVPlacement
from browser_llm.engine.native.kv.slots import TILE_ROWS, reusable
from browser_llm.engine.native.model import LlamaModel
from browser_llm.engine.native.sequence import Sequence
from browser_llm.engine.prompt_store import BLOCK_TOKENS, CacheHit, PromptStore, model_key

__all__ = ["DiskHit", "PromptCache"]

logger = logging.getLogger(__name__)


class DiskHit:
    """A saved prompt found for a request: how many tokens it may give, and its file."""

    def __init__(self, bound: int, path: Path) -> None:
        self.bound = bound  # block-aligned shared prefix (a lower bound of what it gives)
        self.path = path


class PromptCache:
    def __init__(self, config: ContextConfig) -> None:
        self._store: PromptStore | None = None
        # What else changes the cells a prompt leaves (kernels, V layout).
        self._extra = f"{llama_cpp.__version__}:fa={config.flash_attn}"
        if config.prompt_cache_dir and config.prompt_cache_bytes > 0:
            self._store = PromptStore(
                Path(config.prompt_cache_dir),
                config.prompt_cache_bytes,
                config.prompt_cache_min_tokens,
            )

    def open(self, model: LlamaModel) -> None:
        """Indexes the loaded model's saved prompts (a failure only turns the cache off)."""
        if self._store is None:
            return
        try:
            key = model_key(model.info.path, self._extra)
            self._store.open_model(model.info.model_id, key)
        except Exception as exc:
            logger.warning("prompt cache unavailable for %s: %s", model.info.model_id, exc)
            self._store.close_model()

    def close(self) -> None:
        if self._store is not None:
            self._store.close()

    def claim(self, model: LlamaModel, kv: KVPlacement, tokens: list[int]) -> tuple[int, int]:
        """A slot for `tokens` (engine/native/kv/placement.py), its prompt's start loaded
        from disk when a saved prompt gives more than the slots: (seq_id, tokens reused)."""
        hit = self.find(tokens)
        seq_id, reused = kv.claim(model, tokens, hit.bound if hit is not None else 0)
        if hit is not None and reused < hit.bound:
            restored = self.restore(model, seq_id, tokens, hit, reused)
            self._count(hit=restored > reused)
            reused = restored
        elif hit is None and reused < len(tokens) - TILE_ROWS and self._eligible(tokens):
            self._count(hit=False)  # a long prompt neither the slots nor the disk had
        return seq_id, reused

    def _eligible(self, tokens: list[int]) -> bool:
        store = self._store
        return store is not None and store.active and len(tokens) - TILE_ROWS >= store.min_tokens

    def _count(self, hit: bool) -> None:
        assert self._store is not None
        self._store.count(hit)

    def find(self, tokens: list[int]) -> DiskHit | None:
        """The longest saved prefix of `tokens` worth loading (index only)."""
        if self._store is None or len(tokens) < 2 * TILE_ROWS:
            return None
        found = self._store.candidates(tokens, len(tokens) - TILE_ROWS)
        return DiskHit(*found[0]) if found else None

    def restore(
        self, model: LlamaModel, seq_id: int, tokens: list[int], hit: DiskHit, reused: int
    ) -> int:
        """Loads a saved prompt's cells into `seq_id` in place of the `reused` tokens it
        holds and keeps those `tokens` may reuse; returns how many tokens the slot gives
        now (`reused` when the file is bad, 0 when llama.cpp refused it)."""
        assert self._store is not None
        if model.copy_pending(seq_id):
            return reused  # read instead: the copy would undo or spread the load
        started = time.perf_counter()
        saved = self._store.load(hit.path, tokens[: hit.bound])
        if saved is None:
            return reused
        usable = reusable(saved.tokens, tokens)
        if usable < hit.bound:
            return reused
        model.forget(seq_id)
        if not self._set_state(model, seq_id, saved):
            model.forget(seq_id)
            return 0
        if not model.trim(seq_id, usable):
            model.forget(seq_id)
            return 0
        logger.debug(
            "prompt cache: loaded %d tokens (%d bytes) in %.1f ms",
            usable,
            len(saved.payload),
            (time.perf_counter() - started) * 1000,
        )
        return usable

    def _set_state(self, model: LlamaModel, seq_id: int, saved: CacheHit) -> bool:
        size = len(saved.payload)
        buf = (ctypes.c_uint8 * size).from_buffer(saved.payload)
        read = int(llama_cpp.llama_state_seq_set_data(model.ctx, buf, size, seq_id))
        if read != size:
            logger.warning("prompt cache: llama.cpp refused a saved state (%d of %d)", read, size)
            return False
        return True

    def prefilled(self, model: LlamaModel, outputs: list[tuple[Sequence, int]]) -> None:
        """After a decode: saves the cells of prompts that were just read in full (their
        first token is about to be sampled, so the cells hold exactly the prompt)."""
        if self._store is None:
            return
        for seq, _ in outputs:
            if seq.n_generated == 0:
                self._save(model, seq)

    def _save(self, model: LlamaModel, seq: Sequence) -> None:
        assert self._store is not None
        if model.copy_pending(seq.seq_id):
            return  # its stream's data is not what its cells say until the next decode
        tokens = seq.prompt.tokens
        n_prefix = (len(tokens) - TILE_ROWS) // BLOCK_TOKENS * BLOCK_TOKENS
        if not self._store.wants(tokens, n_prefix):
            return
        started = time.perf_counter()
        size = int(llama_cpp.llama_state_seq_get_size(model.ctx, seq.seq_id))
        payload = bytearray(size)  # handed to the store's writer thread as it is
        buf = (ctypes.c_uint8 * size).from_buffer(payload)
        got = int(llama_cpp.llama_state_seq_get_data(model.ctx, buf, size, seq.seq_id))
        del buf  # a bytearray with a live export cannot be resized
        if 0 < got <= size:
            del payload[got:]
            self._store.save(list(tokens), n_prefix, payload)
            logger.debug(
                "prompt cache: copied out %d tokens (%d bytes) in %.1f ms",
                len(tokens),
                got,
                (time.perf_counter() - started) * 1000,
            )

    def readings(self) -> dict[str, int]:
        """EngineStats fields: the folder's size and entries, lookups and hits."""
        if self._store is None:
            return {}
        disk = self._store.stats()
        return {
            "prompt_cache_bytes": disk["bytes"],
            "prompt_cache_entries": disk["entries"],
            "prompt_cache_lookups": self._store.lookups,
            "prompt_cache_hits": self._store.hits,
        }
