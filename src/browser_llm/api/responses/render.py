"""An answer's events as OpenAI's Responses API writes them: one response object, or the
stream of typed events (response.created ... response.completed), each with its
sequence_number, and output_index / content_index where the event has them."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from browser_llm.api.responses.protocol import ResponseCreate
from browser_llm.core.errors import BrowserLLMError
from browser_llm.core.types import Completion
from browser_llm.service.answer import Answer, Done, Failure, ReasoningDelta

__all__ = ["ResponsesView", "new_response_id"]

_ARGUMENT_FRAGMENT = 48  # characters of a call's arguments per streamed delta

# Called with the finished response object before the stream's last event (the store).
OnFinished = Callable[[dict[str, Any]], Awaitable[None]]


def new_response_id() -> str:
    return f"resp_{uuid.uuid4().hex}"


def _usage(completion: Completion, reasoning_tokens: int) -> dict[str, Any]:
    u = completion.usage
    return {
        "input_tokens": u.prompt_tokens,
        "input_tokens_details": {"cached_tokens": u.cached_prompt_tokens},
        "output_tokens": u.completion_tokens,  # the reasoning's included, as OpenAI counts
        "output_tokens_details": {"reasoning_tokens": reasoning_tokens},
        "total_tokens": u.total_tokens,
    }


def _echo(body: ResponseCreate) -> dict[str, Any]:
    """The request's settings as the response object repeats them."""
    text = body.text.model_dump(mode="json", by_alias=True, exclude_none=True) if body.text else {}
    text.setdefault("format", {"type": "text"})
    choice = body.tool_choice
    return {
        "instructions": body.instructions,
        "max_output_tokens": body.max_output_tokens,
        "max_tool_calls": body.max_tool_calls,
        "metadata": body.metadata or {},
        "parallel_tool_calls": body.parallel_tool_calls is not False,
        "previous_response_id": body.previous_response_id,
        "reasoning": {"effort": None, "summary": None},
        "store": body.store is not False,
        "temperature": 1.0 if body.temperature is None else body.temperature,
        "text": text,
        "tool_choice": choice.model_dump(mode="json", exclude_none=True)
        if choice is not None and not isinstance(choice, str)
        else (choice or "auto"),
        "tools": [t.model_dump(mode="json", exclude_none=True) for t in body.tools or ()],
        "top_p": 1.0 if body.top_p is None else body.top_p,
        "truncation": "disabled",
        "user": body.user,
        "background": False,
        "service_tier": "default",
        "top_logprobs": 0,
        "prompt_cache_key": body.prompt_cache_key,
        "safety_identifier": body.safety_identifier,
    }


def _message(item_id: str, text: str, status: str) -> dict[str, Any]:
    return {
        "id": item_id,
        "type": "message",
        "status": status,
        "role": "assistant",
        "content": [_text_part(text)] if status != "in_progress" else [],
    }


def _text_part(text: str) -> dict[str, Any]:
    return {"type": "output_text", "text": text, "annotations": [], "logprobs": []}


def _reasoning(item_id: str, text: str, status: str) -> dict[str, Any]:
    """A thinking model's reasoning as written (reasoning_text content; no summary)."""
    content = [_reasoning_part(text)] if status != "in_progress" else []
    return {"id": item_id, "type": "reasoning", "summary": [], "content": content, "status": status}


def _reasoning_part(text: str) -> dict[str, Any]:
    return {"type": "reasoning_text", "text": text}


def _function_call(call_id: str, name: str, arguments: str, status: str) -> dict[str, Any]:
    return {
        "id": f"fc_{uuid.uuid4().hex}",
        "type": "function_call",
        "status": status,
        "call_id": call_id,
        "name": name,
        "arguments": arguments,
    }


class ResponsesView:
    """One answer as /v1/responses renders it."""

    def __init__(self, answer: Answer, body: ResponseCreate, response_id: str) -> None:
        self.answer = answer
        self.id = response_id
        self.created_at = int(time.time())
        self.base = {"id": self.id, "object": "response", "created_at": self.created_at}
        self.echo = _echo(body)
        self._message_id = f"msg_{uuid.uuid4().hex}"
        self._reasoning_id = f"rs_{uuid.uuid4().hex}"
        self._message_index = 0  # 1 once a reasoning item comes before the message
        self._seq = 0

    def response(
        self,
        status: str,
        output: list[dict[str, Any]],
        done: Done | None = None,
        error: BrowserLLMError | None = None,
    ) -> dict[str, Any]:
        cut = status == "incomplete"
        return {
            **self.base,
            "status": status,
            "completed_at": int(time.time()) if status == "completed" else None,
            "error": None if error is None else {"code": "server_error", "message": error.message},
            "incomplete_details": {"reason": "max_output_tokens"} if cut else None,
            "model": self.answer.model_id,
            "output": output,
            "usage": None if done is None else _usage(done.completion, done.reasoning_tokens),
            **self.echo,
        }

    def _status(self, done: Done) -> str:
        return "incomplete" if done.finish_reason == "length" else "completed"

    def output(self, done: Done, status: str, opened: bool = False) -> list[dict[str, Any]]:
        """The reasoning (a thinking model's), a message (with the answer's text; always
        when there are no calls, or when its item was already streamed open), then the
        function calls."""
        items: list[dict[str, Any]] = []
        if done.reasoning:
            items.append(_reasoning(self._reasoning_id, done.reasoning, status))
        if done.content or not done.calls or opened:
            items.append(_message(self._message_id, done.content or "", status))
        items += [_function_call(c.id, c.name, c.arguments, "completed") for c in done.calls]
        return items

    def body(self, done: Done) -> dict[str, Any]:
        """The whole (non-streamed) response."""
        status = self._status(done)
        return self.response(status, self.output(done, status), done)

    def _event(self, kind: str, **fields: Any) -> bytes:
        payload = {"type": kind, "sequence_number": self._seq, **fields}
        self._seq += 1
        data = json.dumps(payload, ensure_ascii=False)
        return f"event: {kind}\ndata: {data}\n\n".encode()

    async def events(self, on_finished: OnFinished) -> AsyncIterator[bytes]:
        yield self._event("response.created", response=self.response("in_progress", []))
        yield self._event("response.in_progress", response=self.response("in_progress", []))
        message_open = False
        reasoning: list[str] | None = None  # the reasoning item's text while it is open
        async for event in self.answer.events():
            if isinstance(event, Failure):
                failed = self.response("failed", [], error=event.error)
                yield self._event("response.failed", response=failed)
                return
            if isinstance(event, ReasoningDelta):  # always before the answer's text
                if reasoning is None:
                    reasoning = []
                    for chunk in self._open_reasoning():
                        yield chunk
                reasoning.append(event.text)
                yield self._reasoning_delta(event.text)
                continue
            if reasoning is not None and self._message_index == 0:
                self._message_index = 1  # every later item's output_index moves up one
                status = self._status(event) if isinstance(event, Done) else "completed"
                for chunk in self._close_reasoning("".join(reasoning), status):
                    yield chunk
            if not isinstance(event, Done):
                if not event.text:
                    continue
                if not message_open:
                    message_open = True
                    for chunk in self._open_message():
                        yield chunk
                yield self._text_delta(event.text)
                continue
            status = self._status(event)
            output = self.output(event, status, message_open)
            at = self._message_index  # the first item after the reasoning (if any)
            if len(output) > at and output[at]["type"] == "message":
                if not message_open:
                    for chunk in self._open_message():
                        yield chunk
                if event.rest:
                    yield self._text_delta(event.rest)
                for chunk in self._close_message(output[at]):
                    yield chunk
                at += 1
            for index, item in enumerate(output[at:], start=at):  # the calls
                for chunk in self._call_events(index, item):
                    yield chunk
            final = self.response(status, output, event)
            try:
                await on_finished(final)
            except BrowserLLMError as exc:  # the answer is whole, but it could not be kept
                yield self._event("error", code=exc.code, message=exc.message, param=None)
                return
            yield self._event(f"response.{status}", response=final)

    def _open_reasoning(self) -> list[bytes]:
        added = _reasoning(self._reasoning_id, "", "in_progress")
        where = {"item_id": self._reasoning_id, "output_index": 0, "content_index": 0}
        return [
            self._event("response.output_item.added", output_index=0, item=added),
            self._event("response.content_part.added", **where, part=_reasoning_part("")),
        ]

    def _reasoning_delta(self, text: str) -> bytes:
        where = {"item_id": self._reasoning_id, "output_index": 0, "content_index": 0}
        return self._event("response.reasoning_text.delta", **where, delta=text)

    def _close_reasoning(self, text: str, status: str) -> list[bytes]:
        where = {"item_id": self._reasoning_id, "output_index": 0, "content_index": 0}
        item = _reasoning(self._reasoning_id, text, status)
        return [
            self._event("response.reasoning_text.done", **where, text=text),
            self._event("response.content_part.done", **where, part=_reasoning_part(text)),
            self._event("response.output_item.done", output_index=0, item=item),
        ]

    def _open_message(self) -> list[bytes]:
        added = _message(self._message_id, "", "in_progress")
        index = self._message_index
        return [
            self._event("response.output_item.added", output_index=index, item=added),
            self._event(
                "response.content_part.added",
                item_id=self._message_id,
                output_index=index,
                content_index=0,
                part=_text_part(""),
            ),
        ]

    def _text_delta(self, text: str) -> bytes:
        return self._event(
            "response.output_text.delta",
            item_id=self._message_id,
            output_index=self._message_index,
            content_index=0,
            delta=text,
            logprobs=[],
        )

    def _close_message(self, item: dict[str, Any]) -> list[bytes]:
        part = item["content"][0]
        index = self._message_index
        where = {"item_id": self._message_id, "output_index": index, "content_index": 0}
        return [
            self._event("response.output_text.done", **where, text=part["text"], logprobs=[]),
            self._event("response.content_part.done", **where, part=part),
            self._event("response.output_item.done", output_index=index, item=item),
        ]

    def _call_events(self, index: int, item: dict[str, Any]) -> list[bytes]:
        arguments = item["arguments"]
        added = {**item, "arguments": "", "status": "in_progress"}
        where = {"item_id": item["id"], "output_index": index}
        chunks = [self._event("response.output_item.added", output_index=index, item=added)]
        for start in range(0, len(arguments), _ARGUMENT_FRAGMENT):
            fragment = arguments[start : start + _ARGUMENT_FRAGMENT]
            chunks.append(
                self._event("response.function_call_arguments.delta", **where, delta=fragment)
            )
        chunks.append(
            self._event(
                "response.function_call_arguments.done",
                **where,
                name=item["name"],
                arguments=arguments,
            )
        )
        chunks.append(self._event("response.output_item.done", output_index=index, item=item))
        return chunks
