"""The answer to a call as neutral events (text, done, failure) that every dialect only
renders: one stream ending, one reading of tool calls, one rule for a call cut short."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace

from browser_llm.core.errors import BrowserLLMError
from browser_llm.core.types import Completion, TokenLogprob
from browser_llm.engine.base import GenerationRequest
from browser_llm.service.calls import Call
from browser_llm.service.generation import GenerationService, GenerationStream
from browser_llm.service.prepare import Preparer
from browser_llm.service.thinking.plan import NO_THINKING, ThinkPlan
from browser_llm.service.thinking.split import (
    ThinkMarkers,
    ThinkSplitter,
    reasoning_end,
    split_whole,
)
from browser_llm.service.tools.format import answer_text, plan_outcome
from browser_llm.service.tools.generic import ToolCall, ToolPlan

__all__ = ["Answer", "AnswerEvent", "Answers", "Done", "Failure", "ReasoningDelta", "TextDelta"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class TextDelta:
    text: str  # may be empty when it only carries log-probabilities
    logprobs: tuple[TokenLogprob, ...] = ()


@dataclass(frozen=True)
class ReasoningDelta:
    """A piece of a thinking model's reasoning (service/thinking/plan.py), before the answer's
    TextDeltas; each dialect writes it in its own field (never in the answer's)."""

    text: str


@dataclass(frozen=True)
class Done:
    completion: Completion
    content: str | None  # the answer's text (tool answers: the plain part; None: only calls)
    calls: tuple[ToolCall, ...]  # complete, validated calls (tool answers only)
    rest: str  # streamed tool answers: text of the answer not yet sent as TextDelta
    # The whole reasoning (the ReasoningDeltas joined); None: the output was not split.
    # completion.usage counts its tokens with the answer's; reasoning_tokens: how many of
    # them were the reasoning's (its markers included).
    reasoning: str | None = None
    reasoning_tokens: int = 0

    @property
    def finish_reason(self) -> str:
        return self.completion.finish_reason


@dataclass(frozen=True)
class Failure:
    error: BrowserLLMError


AnswerEvent = ReasoningDelta | TextDelta | Done | Failure


class Answer:
    """One admitted generation: `events()` while it runs, or `done(completion)` once a
    caller has collected it whole."""

    def __init__(
        self,
        stream: GenerationStream,
        plan: ToolPlan | None,
        load_s: float,
        think: ThinkPlan = NO_THINKING,
    ) -> None:
        self.stream = stream
        self.plan = plan
        self.think = think
        self.model_id = stream.model_id
        self.asked_logprobs = stream.asked_logprobs
        self.load_s = load_s  # time its start spent loading the model on demand
        self._request_id = stream.request_id

    async def events(self) -> AsyncIterator[AnswerEvent]:
        """ReasoningDelta and TextDelta pieces, then Done, or Failure where the generation
        failed."""
        plan, streamed = self.plan, None
        markers = self.think.markers
        try:
            if plan is None and markers is not None:
                split = ThinkSplitter(markers, self.think.inside)
                async for piece in self.stream.pieces():
                    reasoning, text = split.feed(piece.text)
                    if reasoning:
                        yield ReasoningDelta(reasoning)
                    if text or piece.logprobs:  # a reasoning token's entries ride here
                        yield TextDelta(text, piece.logprobs)
                reasoning, text = split.finish()
                if reasoning:
                    yield ReasoningDelta(reasoning)
                if text:
                    yield TextDelta(text)
            elif plan is None:
                async for piece in self.stream.pieces():
                    yield TextDelta(piece.text, piece.logprobs)
            else:
                # A plain answer streams as it arrives; calls only once they parse.
                streamed = answer_text(plan)
                async for text in self.stream:
                    delta = streamed.feed(text)
                    if delta:
                        yield TextDelta(delta)
        except BrowserLLMError as exc:
            yield Failure(exc)
            return
        assert self.stream.completion is not None
        done = self.done(self.stream.completion)
        if streamed is not None:
            done = Done(done.completion, done.content, done.calls, streamed.rest(done.content))
        yield done

    def done(self, completion: Completion) -> Done:
        markers = self.think.markers
        if self.plan is None and markers is not None:
            reasoning, content = split_whole(markers, self.think.inside, completion.text)
            tokens = self._reasoning_tokens(completion, markers)
            return Done(completion, content, (), "", reasoning, tokens)
        if self.plan is None:
            return Done(completion, completion.text, (), "")
        # max_tokens ran out inside the last call and the engine closed its JSON with filler
        # values: that call is not the model's, the complete ones before it are.
        outcome = plan_outcome(
            self.plan, completion.text, completion.closed_early, completion.closing
        )
        if outcome.errors:  # the grammar should make this impossible: worth a log line
            logger.warning(
                "request %s: tool call arguments off schema: %s", self._request_id, outcome.errors
            )
        return Done(completion, outcome.content, tuple(outcome.calls), "")

    def _reasoning_tokens(self, completion: Completion, markers: ThinkMarkers) -> int:
        """The output's tokens up to the end of its reasoning: the pieces (one per token)
        that began before it ended; all of them where the block was never closed."""
        end = reasoning_end(markers, self.think.inside, completion.text)
        if end == 0:
            return 0
        if end >= len(completion.text):
            return completion.usage.completion_tokens
        starts = [0, *self.stream.piece_ends[:-1]]
        return sum(1 for start in starts if start < end)

    @property
    def logprobs(self) -> list[TokenLogprob]:
        """Every entry of a collected answer (requests that asked for them)."""
        return self.stream.logprobs


class Answers:
    """Calls in, answers out: prepare, then start on the generation service."""

    def __init__(self, generation: GenerationService, preparer: Preparer) -> None:
        self._generation = generation
        self._preparer = preparer

    def prepare(self, call: Call) -> tuple[str | None, GenerationRequest]:
        """The engine request a call would run (model resolved), without running it."""
        model_id = self._preparer.resolve(call.model)
        return model_id, self._preparer.prepare(call, model_id).request

    async def start(self, call: Call) -> Answer:
        """Admitted, or the request's error (before any output)."""
        return (await self.start_all(replace(call, n=1)))[0]

    async def start_all(self, call: Call) -> list[Answer]:
        """`call.n` answers to one prompt, each its own sequence, submitted together (the
        prefix cache lets them share the prompt's KV cells): all admitted, or the error of
        the first that was not (the others closed). A seed gives choice i the seed + i."""
        try:
            model_id = self._preparer.resolve(call.model)
        except BrowserLLMError as error:  # counted, as every request that reached the queue
            self._generation.refused(error)
            raise
        prepared = self._preparer.prepare(call, model_id)
        requests = [prepared.request]
        for i in range(1, call.n):
            params = prepared.request.params
            seed = None if params.seed is None else (params.seed + i) & 0xFFFFFFFF
            request_id = f"{prepared.request.request_id}.{i}"
            requests.append(
                replace(prepared.request, params=replace(params, seed=seed), request_id=request_id)
            )
        started = time.perf_counter()
        starts = [self._generation.start(r, prepared.keep_alive_s) for r in requests]
        results = await asyncio.gather(*starts, return_exceptions=True)
        streams = [r for r in results if isinstance(r, GenerationStream)]
        failed = [r for r in results if not isinstance(r, GenerationStream)]
        if failed:
            for stream in streams:
                stream.close()
            raise failed[0]
        load_s = 0.0 if prepared.loaded else time.perf_counter() - started
        return [Answer(stream, prepared.plan, load_s, prepared.think) for stream in streams]
