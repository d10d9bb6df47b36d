"""An answer's events in Anthropic's shapes: one Message body, or the Messages stream
(message_start, ping, content blocks with their deltas, message_delta, message_stop)."""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import AsyncIterator
from typing import Any

from browser_llm.api.error_shapes import anthropic_error_of
from browser_llm.core.types import Completion
from browser_llm.service.answer import Answer, Done, Failure, ReasoningDelta
from browser_llm.service.tools.generic import ToolCall

__all__ = ["MessagesView", "prompt_only", "sse_event"]

_INPUT_FRAGMENT = 48  # characters of a call's input per streamed input_json_delta


def sse_event(kind: str, payload: dict[str, Any]) -> bytes:
    """One event as Anthropic streams it: the `event:` line names the `type` in `data`."""
    data = json.dumps({"type": kind, **payload}, ensure_ascii=False)
    return f"event: {kind}\ndata: {data}\n\n".encode()


def stop_reason(done: Done) -> str:
    if done.calls:
        return "tool_use"
    if done.finish_reason == "length":
        return "max_tokens"
    return "stop_sequence" if done.completion.stop_sequence is not None else "end_turn"


def _usage(completion: Completion) -> dict[str, Any]:
    """Anthropic counts prompt tokens read from the cache apart from input_tokens."""
    u = completion.usage
    return {
        "input_tokens": u.prompt_tokens - u.cached_prompt_tokens,
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": u.cached_prompt_tokens,
        "output_tokens": u.completion_tokens,
    }


def signature(thinking: str) -> str:
    """A thinking block's signature: never empty (clients keep the block only with one) and
    the same for the same text; a digest, which nothing here checks when it comes back."""
    return "blm-" + hashlib.sha256(thinking.encode()).hexdigest()[:40]


def _tool_use(call: ToolCall) -> dict[str, Any]:
    return {
        "type": "tool_use",
        "id": call.id,
        "name": call.name,
        "input": json.loads(call.arguments),
    }


def prompt_only(model_id: str, input_tokens: int, stream: bool) -> dict[str, Any] | bytes:
    """The answer to `max_tokens: 0` (Anthropic's cache pre-warming): no content, the
    prompt's tokens counted; one Message, or its stream of three events."""
    message: dict[str, Any] = {
        "id": f"msg_{uuid.uuid4().hex[:24]}",
        "type": "message",
        "role": "assistant",
        "model": model_id,
        "content": [],
        "stop_reason": "max_tokens",
        "stop_sequence": None,
        "usage": {
            "input_tokens": input_tokens,
            "cache_creation_input_tokens": 0,
            "cache_read_input_tokens": 0,
            "output_tokens": 0,
        },
    }
    if not stream:
        return message
    start = {
        **message,
        "stop_reason": None,
        "usage": {"input_tokens": input_tokens, "output_tokens": 0},
    }
    delta = {"stop_reason": "max_tokens", "stop_sequence": None}
    return b"".join(
        [
            sse_event("message_start", {"message": start}),
            sse_event("message_delta", {"delta": delta, "usage": message["usage"]}),
            sse_event("message_stop", {}),
        ]
    )


class MessagesView:
    """One answer as /v1/messages renders it."""

    def __init__(self, answer: Answer) -> None:
        self.answer = answer
        self.base: dict[str, Any] = {
            "id": f"msg_{uuid.uuid4().hex[:24]}",
            "type": "message",
            "role": "assistant",
            "model": answer.model_id,
        }

    def body(self, done: Done) -> dict[str, Any]:
        """The whole (non-streamed) Message."""
        content: list[dict[str, Any]] = []
        if done.reasoning:
            block = {"type": "thinking", "thinking": done.reasoning}
            content.append({**block, "signature": signature(done.reasoning)})
        if done.content or not done.calls:
            content.append({"type": "text", "text": done.content or ""})
        content += [_tool_use(c) for c in done.calls]
        return {
            **self.base,
            "content": content,
            "stop_reason": stop_reason(done),
            "stop_sequence": done.completion.stop_sequence,
            "usage": _usage(done.completion),
        }

    async def events(self) -> AsyncIterator[bytes]:
        # Only the prompt's size is known before the answer (its cached part comes at the end).
        start = {"input_tokens": self.answer.stream.admitted.prompt_tokens, "output_tokens": 0}
        message = {**self.base, "content": [], "stop_reason": None, "stop_sequence": None}
        yield sse_event("message_start", {"message": {**message, "usage": start}})
        yield sse_event("ping", {})
        index, text_open = 0, False
        thinking: list[str] | None = None  # the thinking block's text while it is open
        async for event in self.answer.events():
            if isinstance(event, Failure):
                yield sse_event("error", anthropic_error_of(event.error))
                return
            if isinstance(event, ReasoningDelta):  # the reasoning comes before any text
                if thinking is None:
                    thinking = []
                    yield _block_start(index, {"type": "thinking", "thinking": "", "signature": ""})
                thinking.append(event.text)
                yield _delta(index, {"type": "thinking_delta", "thinking": event.text})
                continue
            if thinking is not None:  # as Anthropic: the signature last, then the block ends
                sig = signature("".join(thinking))
                yield _delta(index, {"type": "signature_delta", "signature": sig})
                yield sse_event("content_block_stop", {"index": index})
                index, thinking = index + 1, None
            if not isinstance(event, Done):
                if not event.text:
                    continue
                if not text_open:
                    yield _block_start(index, {"type": "text", "text": ""})
                    text_open = True
                yield _delta(index, {"type": "text_delta", "text": event.text})
                continue
            if event.rest or (not text_open and not event.calls):
                if not text_open:
                    yield _block_start(index, {"type": "text", "text": ""})
                    text_open = True
                if event.rest:
                    yield _delta(index, {"type": "text_delta", "text": event.rest})
            if text_open:
                yield sse_event("content_block_stop", {"index": index})
                index += 1
            for call in event.calls:
                for chunk in _call_events(index, call):
                    yield chunk
                index += 1
            delta = {
                "stop_reason": stop_reason(event),
                "stop_sequence": event.completion.stop_sequence,
            }
            yield sse_event("message_delta", {"delta": delta, "usage": _usage(event.completion)})
            yield sse_event("message_stop", {})


def _block_start(index: int, block: dict[str, Any]) -> bytes:
    return sse_event("content_block_start", {"index": index, "content_block": block})


def _delta(index: int, delta: dict[str, Any]) -> bytes:
    return sse_event("content_block_delta", {"index": index, "delta": delta})


def _call_events(index: int, call: ToolCall) -> list[bytes]:
    """A tool_use block: its head with empty input, the input JSON in fragments, its end."""
    head = {"type": "tool_use", "id": call.id, "name": call.name, "input": {}}
    out = [_block_start(index, head)]
    text = call.arguments
    for at in range(0, len(text), _INPUT_FRAGMENT):
        out.append(
            _delta(
                index, {"type": "input_json_delta", "partial_json": text[at : at + _INPUT_FRAGMENT]}
            )
        )
    out.append(sse_event("content_block_stop", {"index": index}))
    return out
