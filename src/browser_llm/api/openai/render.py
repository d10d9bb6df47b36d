"""An answer's events in OpenAI's shapes: chat and legacy completions, as one JSON body or
as Server-Sent Events (chunks, then `data: [DONE]`)."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

from browser_llm.api.error_shapes import openai_error_of
from browser_llm.api.logprob_views import chat_logprobs, completion_logprobs
from browser_llm.core.types import Completion, TokenLogprob
from browser_llm.service.answer import Answer, Done, Failure, ReasoningDelta

__all__ = ["OpenAIView", "sse"]

_ARGUMENT_FRAGMENT = 48  # characters of a call's arguments per streamed delta


def sse(payload: dict[str, Any] | str) -> bytes:
    text = payload if isinstance(payload, str) else json.dumps(payload, ensure_ascii=False)
    return f"data: {text}\n\n".encode()


def _usage(completion: Completion) -> dict[str, Any]:
    u = completion.usage
    return {
        "prompt_tokens": u.prompt_tokens,
        "completion_tokens": u.completion_tokens,
        "total_tokens": u.total_tokens,
        "prompt_tokens_details": {"cached_tokens": u.cached_prompt_tokens},
    }


def _finish(done: Done) -> str:
    return "tool_calls" if done.calls else done.finish_reason


def _tool_calls(done: Done) -> list[dict[str, Any]]:
    return [
        {"id": c.id, "type": "function", "function": {"name": c.name, "arguments": c.arguments}}
        for c in done.calls
    ]


class OpenAIView:
    """One answer as /v1/chat/completions (chat) or /v1/completions renders it.
    `offset`: legacy text_offset counts from the prompt's start, as OpenAI's (no echo)."""

    def __init__(self, answer: Answer, chat: bool, offset: int = 0) -> None:
        self.answer = answer
        self.chat = chat
        self.offset = offset
        prefix, kind = ("chatcmpl", "chat.completion") if chat else ("cmpl", "text_completion")
        self.base: dict[str, Any] = {
            "id": f"{prefix}-{uuid.uuid4().hex[:24]}",
            "object": kind,
            "created": int(time.time()),
            "model": answer.model_id,
            "system_fingerprint": None,
        }

    def _logprobs(self, entries: list[TokenLogprob]) -> dict[str, Any] | None:
        if not self.answer.asked_logprobs:
            return None
        return chat_logprobs(entries) if self.chat else completion_logprobs(entries, self.offset)

    def body(self, done: Done) -> dict[str, Any]:
        """The whole (non-streamed) answer."""
        choice: dict[str, Any] = {"index": 0, "finish_reason": _finish(done)}
        if self.chat:
            message: dict[str, Any] = {"role": "assistant", "content": done.content}
            if done.reasoning:  # both names: clients read one or the other
                message["reasoning_content"] = message["reasoning"] = done.reasoning
            if done.calls:
                message["tool_calls"] = _tool_calls(done)
            choice["message"] = message
        else:
            choice["text"] = done.content or ""
        choice["logprobs"] = self._logprobs(self.answer.logprobs)
        return {**self.base, "choices": [choice], "usage": _usage(done.completion)}

    def _chunk(
        self, delta: dict[str, Any] | str | None, finish: str | None = None, logprobs: Any = None
    ) -> dict[str, Any]:
        if self.chat:
            choice: dict[str, Any] = {"index": 0, "delta": delta or {}, "finish_reason": finish}
        else:
            choice = {"index": 0, "text": delta or "", "finish_reason": finish}
        choice["logprobs"] = logprobs
        return {
            **self.base,
            "object": "chat.completion.chunk" if self.chat else self.base["object"],
            "choices": [choice],
        }

    def _text(self, text: str, entries: tuple[TokenLogprob, ...] = ()) -> dict[str, Any]:
        # Asked for: each text chunk carries its own tokens' entries.
        return self._chunk(
            {"content": text} if self.chat else text, None, self._logprobs(list(entries))
        )

    async def events(self, include_usage: bool) -> AsyncIterator[bytes]:
        if self.chat:
            # Tool answers open with no content (it may be only calls), others with "".
            first = None if self.answer.plan is not None else ""
            yield sse(self._chunk({"role": "assistant", "content": first}))
        async for event in self.answer.events():
            if isinstance(event, Failure):
                yield sse(openai_error_of(event.error))
                break
            if isinstance(event, ReasoningDelta):
                yield sse(self._chunk({"reasoning_content": event.text, "reasoning": event.text}))
                continue
            if not isinstance(event, Done):
                yield sse(self._text(event.text, event.logprobs))
                continue
            if event.rest:
                yield sse(self._text(event.rest))
            for index, call in enumerate(event.calls):
                for delta in _call_deltas(index, call.id, call.name, call.arguments):
                    yield sse(self._chunk({"tool_calls": [delta]}))
            yield sse(self._chunk(None, _finish(event)))
            if include_usage:
                yield sse({**self._chunk(None), "choices": [], "usage": _usage(event.completion)})
        yield sse("[DONE]")


def _call_deltas(index: int, call_id: str, name: str, arguments: str) -> list[dict[str, Any]]:
    """One call as OpenAI streams it: its head, then its arguments in fragments."""
    head = {"index": index, "id": call_id, "type": "function"}
    deltas = [{**head, "function": {"name": name, "arguments": ""}}]
    for start in range(0, len(arguments), _ARGUMENT_FRAGMENT):
        fragment = arguments[start : start + _ARGUMENT_FRAGMENT]
        deltas.append({"index": index, "function": {"arguments": fragment}})
    return deltas
