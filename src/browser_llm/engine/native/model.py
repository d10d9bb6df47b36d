"""A loaded GGUF model and its llama.cpp context. Engine-thread use only.

Everything here calls into llama.cpp, so it must run on the engine's own
thread (see ENGINEERING-NOTES: other threads get their own OpenMP pools).
"""

from __future__ import annotations

import ctypes
import logging
import os
import time
from typing import Any

import llama_cpp
import numpy as np

from browser_llm.core.errors import ModelLoadFailedError, ValidationError
from browser_llm.core.types import LoadedModel
from browser_llm.engine.chat_template import ChatTemplate
from browser_llm.engine.config import ContextConfig
from browser_llm.engine.native.embedder import Embedder
from browser_llm.engine.native.whitespace_merge import WhitespaceMerges

__all__ = ["ContextConfig", "LlamaModel", "install_log_bridge"]

logger = logging.getLogger(__name__)
_llama_logger = logging.getLogger("browser_llm.engine.native.llama_cpp")
_backend_ready = False
_FLASH_ATTN = {
    "auto": llama_cpp.LLAMA_FLASH_ATTN_TYPE_AUTO,
    "on": llama_cpp.LLAMA_FLASH_ATTN_TYPE_ENABLED,
    "off": llama_cpp.LLAMA_FLASH_ATTN_TYPE_DISABLED,
}


@llama_cpp.llama_log_callback  # type: ignore[untyped-decorator]
def _log_bridge(level: int, text: bytes, _user_data: ctypes.c_void_p) -> None:
    # ggml levels: 1 debug, 2 info, 3 warn, 4 error, 5 continuation. llama.cpp
    # is chatty at load time, so its info lines go to debug.
    message = text.decode("utf-8", errors="replace").rstrip()
    if message:
        _llama_logger.log(logging.WARNING if level in (3, 4) else logging.DEBUG, "%s", message)


def install_log_bridge() -> None:
    """Routes llama.cpp's native log lines into Python logging (once per process)."""
    global _backend_ready
    if not _backend_ready:
        llama_cpp.llama_log_set(_log_bridge, ctypes.c_void_p(0))
        llama_cpp.llama_backend_init()
        _backend_ready = True


class LlamaModel:
    """Model weights, one context, and the vocabulary helpers the engine needs."""

    def __init__(self, model_id: str, path: str, config: ContextConfig) -> None:
        started = time.perf_counter()
        self.config = config
        # Sequences whose KV stream is the source or target of a copy llama.cpp carries
        # out only at the next decode (see `copy`).
        self._copies_pending: set[int] = set()
        mparams = llama_cpp.llama_model_default_params()
        gpu = llama_cpp.llama_supports_gpu_offload()
        mparams.n_gpu_layers = (999 if gpu else 0) if config.gpu_layers < 0 else config.gpu_layers
        self.model: Any = llama_cpp.llama_model_load_from_file(path.encode(), mparams)
        if not self.model:
            raise ModelLoadFailedError(
                f"llama.cpp could not load model '{model_id}' (not a valid GGUF file?)",
                {"model_id": model_id},
            )
        try:
            self.ctx: Any = self._new_context(config)
        except BaseException:
            llama_cpp.llama_model_free(self.model)
            raise
        self.vocab: Any = llama_cpp.llama_model_get_vocab(self.model)
        self.n_vocab = int(llama_cpp.llama_vocab_n_tokens(self.vocab))
        self.eog_tokens = tuple(
            t for t in range(self.n_vocab) if llama_cpp.llama_vocab_is_eog(self.vocab, t)
        )
        self.add_bos = bool(llama_cpp.llama_vocab_get_add_bos(self.vocab))
        self.chat_template = self._read_chat_template(model_id)
        self.batch: Any = llama_cpp.llama_batch_init(config.batch_size, 0, 1)
        self._piece_buf = ctypes.create_string_buffer(256)
        self._embedder: Embedder | None = None
        self._merges: WhitespaceMerges | None = None
        self.info = LoadedModel(
            model_id=model_id,
            path=path,
            context_length=int(llama_cpp.llama_n_ctx_seq(self.ctx)),
            train_context_length=int(llama_cpp.llama_model_n_ctx_train(self.model)),
            n_vocab=self.n_vocab,
            has_chat_template=self.chat_template is not None,
            size_bytes=os.path.getsize(path),
            load_time_s=time.perf_counter() - started,
            description=self._meta("general.name") or "",
        )

    def _new_context(self, config: ContextConfig) -> Any:
        cparams = llama_cpp.llama_context_default_params()
        cparams.n_ctx = config.context_size * config.max_sequences
        cparams.n_batch = config.batch_size
        cparams.n_ubatch = config.batch_size
        cparams.n_seq_max = config.max_sequences
        cparams.n_threads = config.threads
        cparams.n_threads_batch = config.threads
        cparams.flash_attn_type = _FLASH_ATTN[config.flash_attn]
        # One KV stream per sequence: a sequence's cells sit where they would if
        # it ran alone, so batching changes no output (a unified cache shifts
        # cells and with them the rounding of attention sums).
        cparams.kv_unified = False
        cparams.no_perf = True
        ctx = llama_cpp.llama_init_from_model(self.model, cparams)
        if not ctx:
            raise ModelLoadFailedError(
                "llama.cpp could not create a context (out of memory for the KV cache?)",
                {"context_size": config.context_size},
            )
        return ctx

    def _meta(self, key: str) -> str | None:
        buf = ctypes.create_string_buffer(1 << 16)
        n = llama_cpp.llama_model_meta_val_str(self.model, key.encode(), buf, len(buf))
        if n < 0:
            return None
        return buf.value.decode("utf-8", errors="replace")

    def _token_text(self, token: int) -> str:
        if token < 0:
            return ""
        raw = llama_cpp.llama_vocab_get_text(self.vocab, token)
        return raw.decode("utf-8", errors="replace") if raw else ""

    def _read_chat_template(self, model_id: str) -> ChatTemplate | None:
        raw = llama_cpp.llama_model_chat_template(self.model, None)
        if not raw:
            return None
        bos = self._token_text(llama_cpp.llama_vocab_bos(self.vocab))
        eos = self._token_text(llama_cpp.llama_vocab_eos(self.vocab))
        try:
            return ChatTemplate(raw.decode("utf-8", errors="replace"), bos, eos)
        except ValueError as exc:
            logger.warning("model %s: chat template ignored: %s", model_id, exc)
            return None

    @property
    def context_length(self) -> int:
        return self.info.context_length

    def tokenize(self, text: str, add_special: bool, parse_special: bool = True) -> list[int]:
        data = text.encode("utf-8")
        capacity = len(data) + 8
        tokens = (llama_cpp.llama_token * capacity)()
        n = llama_cpp.llama_tokenize(
            self.vocab, data, len(data), tokens, capacity, add_special, parse_special
        )
        if n < 0:  # buffer too small: -n is the size needed
            capacity = -n
            tokens = (llama_cpp.llama_token * capacity)()
            n = llama_cpp.llama_tokenize(
                self.vocab, data, len(data), tokens, capacity, add_special, parse_special
            )
        return list(tokens[:n])

    def detokenize(self, tokens: list[int], remove_special: bool, unparse_special: bool) -> str:
        """Text of token ids (checked against the vocabulary first: llama.cpp does not).
        Bytes that do not form whole UTF-8 characters come out as U+FFFD."""
        for i, token in enumerate(tokens):
            if not 0 <= token < self.n_vocab:
                raise ValidationError(
                    f"tokens[{i}]: {token} is not a token id of this model (0-{self.n_vocab - 1})",
                    {"field": f"tokens.{i}", "n_vocab": self.n_vocab},
                )
        array = (llama_cpp.llama_token * max(1, len(tokens)))(*tokens)
        capacity = 16 * len(tokens) + 16
        for _ in range(2):
            buf = ctypes.create_string_buffer(capacity)
            n = llama_cpp.llama_detokenize(
                self.vocab, array, len(tokens), buf, capacity, remove_special, unparse_special
            )
            if n >= 0:
                return buf.raw[:n].decode("utf-8", errors="replace")
            capacity = -n  # too small: -n is the size needed
        raise ValidationError("these tokens could not be turned into text", {"field": "tokens"})

    def piece(self, token: int) -> bytes:
        """The bytes a token stands for; control tokens give nothing."""
        buf = self._piece_buf
        n = llama_cpp.llama_token_to_piece(self.vocab, token, buf, len(buf), 0, False)
        if n < 0:
            buf = ctypes.create_string_buffer(-n)
            n = llama_cpp.llama_token_to_piece(self.vocab, token, buf, len(buf), 0, False)
        return buf.raw[:n]

    def is_eog(self, token: int) -> bool:
        return bool(llama_cpp.llama_vocab_is_eog(self.vocab, token))

    def forget(self, seq_id: int) -> None:
        """Frees a sequence's KV cells."""
        llama_cpp.llama_memory_seq_rm(llama_cpp.llama_get_memory(self.ctx), seq_id, -1, -1)

    def copy(self, src: int, dst: int) -> None:
        """Gives `dst` a copy of `src`'s cells (llama.cpp copies the whole KV stream at
        the next decode, before computing it)."""
        llama_cpp.llama_memory_seq_cp(llama_cpp.llama_get_memory(self.ctx), src, dst, -1, -1)
        self._copies_pending |= {src, dst}

    def copy_pending(self, seq_id: int) -> bool:
        """Whether a copy from or to `seq_id`'s stream waits for the next decode: until
        then its cells must not be read or written with the state API (a state loaded
        into the source would be what the copy hands the target, and a state loaded into
        the target would be overwritten)."""
        return seq_id in self._copies_pending

    def copies_done(self) -> None:
        """A decode ran: llama.cpp carried out the pending copies before computing it."""
        self._copies_pending.clear()

    def trim(self, seq_id: int, keep: int) -> bool:
        """Keeps a sequence's first `keep` positions; False if llama.cpp cannot cut there."""
        memory = llama_cpp.llama_get_memory(self.ctx)
        return bool(llama_cpp.llama_memory_seq_rm(memory, seq_id, keep, -1))

    def forget_batch(self) -> None:
        """Removes every cell the batch in `self.batch` wrote. llama.cpp splits a batch into
        ubatches and, when one is aborted, removes only that one's cells: the ubatches
        before it stay, and running the batch again would repeat their positions."""
        batch = self.batch
        first: dict[int, int] = {}
        for i in range(batch.n_tokens):
            seq_id, pos = int(batch.seq_id[i][0]), int(batch.pos[i])
            first[seq_id] = min(pos, first.get(seq_id, pos))
        memory = llama_cpp.llama_get_memory(self.ctx)
        for seq_id, pos in first.items():
            llama_cpp.llama_memory_seq_rm(memory, seq_id, pos, -1)

    def set_threads(self, threads: int) -> None:
        """Threads for the next decode calls (the context stays; nothing is recomputed)."""
        llama_cpp.llama_set_n_threads(self.ctx, threads, threads)

    def self_check(self, prompt: str = "The quick brown fox", steps: int = 4) -> None:
        """Reads a short prompt and decodes a few tokens on sequence 0, then forgets them.

        A llama.cpp build that cannot run on this CPU (an instruction it lacks: SIGILL)
        fails here, inside the engine process at load, rather than at a user's request.
        """
        tokens = self.tokenize(prompt, add_special=True)[: self.config.batch_size]
        batch = self.batch
        pos = 0
        for _ in range(steps + 1):
            for i, token in enumerate(tokens):
                batch.token[i] = token
                batch.pos[i] = pos + i
                batch.n_seq_id[i] = 1
                batch.seq_id[i][0] = 0
                batch.logits[i] = i == len(tokens) - 1
            batch.n_tokens = len(tokens)
            rc = llama_cpp.llama_decode(self.ctx, batch)
            if rc != 0:
                self.forget(0)
                raise ModelLoadFailedError(
                    f"llama.cpp failed its start-up self-check (llama_decode code {rc})",
                    {"reason": "self_check_failed"},
                )
            pos += len(tokens)
            logits = np.ctypeslib.as_array(
                llama_cpp.llama_get_logits_ith(self.ctx, len(tokens) - 1), shape=(self.n_vocab,)
            )
            tokens = [int(logits.argmax())]
        self.forget(0)

    def embedder(self) -> Embedder:
        """The embedding context, made on first use (it costs its own KV memory)."""
        if self._embedder is None:
            self._embedder = Embedder(
                self.model, self.vocab, self.config.threads, self.info.train_context_length
            )
        return self._embedder

    def whitespace_merges(self) -> WhitespaceMerges:
        """The whitespace tokens' merged tokens, for grammar sampling (made on first use)."""
        if self._merges is None:
            self._merges = WhitespaceMerges(self.n_vocab, self.piece)
        return self._merges

    def free(self) -> None:
        if self._embedder is not None:
            self._embedder.free()
            self._embedder = None
        if self.batch is not None:
            llama_cpp.llama_batch_free(self.batch)
            self.batch = None
        if self.ctx:
            llama_cpp.llama_free(self.ctx)
            self.ctx = None
        if self.model:
            llama_cpp.llama_model_free(self.model)
            self.model = None
