"""An answer's events in OpenAI's shapes: chat and legacy completions, as one JSON body or
as Server-Sent Events (chunks, then `data: [DONE]`)."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import AsyncIterator, Sequence
from typing import Any

from browser_llm.api.error_shapes import openai_error_of
from browser_llm.api.logprob_views import chat_logprobs, completion_logprobs
from browser_llm.core.types import TokenLogprob
from browser_llm.service.answer import Answer, Done, Failure, ReasoningDelta

__all__ = ["OpenAIView", "sse"]

_ARGUMENT_FRAGMENT = 48  # characters of a call's arguments per streamed delta


def sse(payload: dict[str, Any] | str) -> bytes:
    text = payload if isinstance(payload, str) else json.dumps(payload, ensure_ascii=False)
    return f"data: {text}\n\n".encode()


def _usage(dones: Sequence[Done]) -> dict[str, Any]:
    """One usage for every choice: the prompt once, the completion tokens of all (of them
    the reasoning's, for a thinking model)."""
    first = dones[0].completion.usage
    generated = sum(d.completion.usage.completion_tokens for d in dones)
    return {
        "prompt_tokens": first.prompt_tokens,
        "completion_tokens": generated,
        "total_tokens": first.prompt_tokens + generated,
        "prompt_tokens_details": {"cached_tokens": first.cached_prompt_tokens},
        "completion_tokens_details": {"reasoning_tokens": sum(d.reasoning_tokens for d in dones)},
    }


def _finish(done: Done) -> str:
    return "tool_calls" if done.calls else done.finish_reason


def _tool_calls(done: Done) -> list[dict[str, Any]]:
    return [
        {"id": c.id, "type": "function", "function": {"name": c.name, "arguments": c.arguments}}
        for c in done.calls
    ]


class OpenAIView:
    """Answers to one request (n choices, choice i from answers[i]) as
    /v1/chat/completions (chat) or /v1/completions renders them.
    `offset`: legacy text_offset counts from the prompt's start, as OpenAI's (no echo)."""

    def __init__(self, answers: Sequence[Answer], chat: bool, offset: int = 0) -> None:
        self.answers = answers
        self.chat = chat
        self.offset = offset
        prefix, kind = ("chatcmpl", "chat.completion") if chat else ("cmpl", "text_completion")
        self.base: dict[str, Any] = {
            "id": f"{prefix}-{uuid.uuid4().hex[:24]}",
            "object": kind,
            "created": int(time.time()),
            "model": answers[0].model_id,
            "system_fingerprint": None,
        }

    def _logprobs(self, entries: list[TokenLogprob]) -> dict[str, Any] | None:
        if not self.answers[0].asked_logprobs:
            return None
        return chat_logprobs(entries) if self.chat else completion_logprobs(entries, self.offset)

    def body(self, dones: Sequence[Done]) -> dict[str, Any]:
        """The whole (non-streamed) answer: one choice per Done, in the answers' order."""
        choices = []
        for index, (answer, done) in enumerate(zip(self.answers, dones, strict=True)):
            choice: dict[str, Any] = {"index": index, "finish_reason": _finish(done)}
            if self.chat:
                message: dict[str, Any] = {"role": "assistant", "content": done.content}
                if done.reasoning:  # both names: clients read one or the other
                    message["reasoning_content"] = message["reasoning"] = done.reasoning
                if done.calls:
                    message["tool_calls"] = _tool_calls(done)
                choice["message"] = message
            else:
                choice["text"] = done.content or ""
            choice["logprobs"] = self._logprobs(answer.logprobs)
            choices.append(choice)
        usage = _usage(dones)
        return {**self.base, "choices": choices, "usage": usage}

    def _chunk(
        self,
        index: int,
        delta: dict[str, Any] | str | None,
        finish: str | None = None,
        logprobs: Any = None,
    ) -> dict[str, Any]:
        if self.chat:
            choice: dict[str, Any] = {"index": index, "delta": delta or {}, "finish_reason": finish}
        else:
            choice = {"index": index, "text": delta or "", "finish_reason": finish}
        choice["logprobs"] = logprobs
        return {
            **self.base,
            "object": "chat.completion.chunk" if self.chat else self.base["object"],
            "choices": [choice],
        }

    def _text(
        self, index: int, text: str, entries: tuple[TokenLogprob, ...] = ()
    ) -> dict[str, Any]:
        # Asked for: each text chunk carries its own tokens' entries.
        return self._chunk(
            index, {"content": text} if self.chat else text, None, self._logprobs(list(entries))
        )

    async def events(self, include_usage: bool) -> AsyncIterator[bytes]:
        """Each choice's chunks in turn (the others keep generating meanwhile), then the
        usage chunk when asked, then [DONE]; a failure ends the stream with its error."""
        dones = []
        for index, answer in enumerate(self.answers):
            done = None
            async for chunk in self._choice_events(index, answer):
                if isinstance(chunk, Done):
                    done = chunk
                else:
                    yield chunk
            if done is None:  # failed: its error event went out
                break
            dones.append(done)
        else:
            if include_usage:
                usage = _usage(dones)
                yield sse({**self._chunk(0, None), "choices": [], "usage": usage})
        yield sse("[DONE]")

    async def _choice_events(self, index: int, answer: Answer) -> AsyncIterator[bytes | Done]:
        """One choice's chunks, then its Done (none after a failure)."""
        if self.chat:
            # Tool answers open with no content (it may be only calls), others with "".
            first = None if answer.plan is not None else ""
            yield sse(self._chunk(index, {"role": "assistant", "content": first}))
        async for event in answer.events():
            if isinstance(event, Failure):
                yield sse(openai_error_of(event.error, self.chat))
                return
            if isinstance(event, ReasoningDelta):
                delta = {"reasoning_content": event.text, "reasoning": event.text}
                yield sse(self._chunk(index, delta))
                continue
            if not isinstance(event, Done):
                yield sse(self._text(index, event.text, event.logprobs))
                continue
            if event.rest:
                yield sse(self._text(index, event.rest))
            for position, call in enumerate(event.calls):
                for delta in _call_deltas(position, call.id, call.name, call.arguments):
                    yield sse(self._chunk(index, {"tool_calls": [delta]}))
            yield sse(self._chunk(index, None, _finish(event)))
            yield event


def _call_deltas(index: int, call_id: str, name: str, arguments: str) -> list[dict[str, Any]]:
    """One call as OpenAI streams it: its head, then its arguments in fragments."""
    head = {"index": index, "id": call_id, "type": "function"}
    deltas = [{**head, "function": {"name": name, "arguments": ""}}]
    for start in range(0, len(arguments), _ARGUMENT_FRAGMENT):
        fragment = arguments[start : start + _ARGUMENT_FRAGMENT]
        deltas.append({"index": index, "function": {"arguments": fragment}})
    return deltas
