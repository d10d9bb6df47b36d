"""An answer's events in Ollama's shapes: NDJSON lines (one per piece, then a final line
with Ollama's counts and nanosecond durations) or one JSON object. Errors are Ollama's
`{"error": "..."}`: with the HTTP status before a stream starts, as a last line after."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

from browser_llm.api.error_shapes import ollama_error_of
from browser_llm.api.logprob_views import ollama_logprobs
from browser_llm.api.ollama.views import iso_time
from browser_llm.core.types import Completion
from browser_llm.service.answer import Answer, Done, Failure, ReasoningDelta

__all__ = ["OllamaView", "ndjson"]

_NS = 1_000_000_000


def ndjson(obj: dict[str, Any]) -> bytes:
    return (json.dumps(obj, ensure_ascii=False) + "\n").encode()


class OllamaView:
    """One answer as /api/generate (`response`) or /api/chat (`message`) renders it;
    `name`: the model as the client named it."""

    def __init__(self, answer: Answer, name: str, chat: bool) -> None:
        self.answer = answer
        self.name = name
        self.chat = chat

    def line(self, text: str, thinking: str | None = None) -> dict[str, Any]:
        """One streamed piece (or, with done fields added, the whole answer); `thinking`:
        reasoning, next to the text as Ollama writes it (in the message for /api/chat)."""
        line: dict[str, Any] = {"model": self.name, "created_at": iso_time()}
        if self.chat:
            line["message"] = {"role": "assistant", "content": text}
            if thinking:
                line["message"]["thinking"] = thinking
        else:
            line["response"] = text
            if thinking:
                line["thinking"] = thinking
        line["done"] = False
        return line

    def final_fields(self, completion: Completion) -> dict[str, Any]:
        """done, done_reason and Ollama's counts and durations (nanoseconds)."""
        t, usage = completion.timings, completion.usage
        return {
            "done": True,
            "done_reason": completion.finish_reason,
            "total_duration": round(t.total_s * _NS),  # from arrival: includes a load
            "load_duration": round(self.answer.load_s * _NS),
            "prompt_eval_count": usage.prompt_tokens,
            "prompt_eval_duration": round(t.prefill_s * _NS),
            "eval_count": usage.completion_tokens,
            "eval_duration": round(t.decode_s * _NS),
        }

    def _calls(self, done: Done) -> list[dict[str, Any]]:
        return [
            {"function": {"name": c.name, "arguments": json.loads(c.arguments)}} for c in done.calls
        ]

    def body(self, done: Done) -> dict[str, Any]:
        """The whole (non-streamed) answer."""
        line = self.line(done.content or "", done.reasoning)
        body = {**line, **self.final_fields(done.completion)}
        if done.calls:
            body["message"]["tool_calls"] = self._calls(done)
        if self.answer.asked_logprobs:
            body["logprobs"] = ollama_logprobs(self.answer.logprobs)
        return body

    async def lines(self) -> AsyncIterator[bytes]:
        asked = self.answer.asked_logprobs
        async for event in self.answer.events():
            if isinstance(event, Failure):
                yield ndjson(ollama_error_of(event.error))
                return
            if isinstance(event, Done):
                if event.rest or event.calls:  # a tool answer's end: its calls in one line
                    line = self.line(event.rest)
                    if event.calls:
                        line["message"]["tool_calls"] = self._calls(event)
                    yield ndjson(line)
                yield ndjson({**self.line(""), **self.final_fields(event.completion)})
                return
            if isinstance(event, ReasoningDelta):
                yield ndjson(self.line("", event.text))
                continue
            line = self.line(event.text)
            if asked:  # each line carries its own tokens' entries, as Ollama's do
                line["logprobs"] = ollama_logprobs(event.logprobs)
            yield ndjson(line)
