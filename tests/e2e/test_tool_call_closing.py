"""A tool call the model wrote whole survives the engine's JSON closing at max_tokens: when
the budget runs out right after the model's last call, the engine only closes the list
(`]}`) and reports that closing, so the call is the model's and is kept (a call the closing
had to finish is dropped: tests/api/test_tool_call_cut.py)."""

from __future__ import annotations

import openai

from browser_llm.config import DEFAULT_MODEL_ID as MODEL
from tests.e2e.conftest import Server

ADD = {
    "type": "function",
    "function": {
        "name": "add_two_numbers",
        "description": "Add two numbers",
        "parameters": {
            "type": "object",
            "properties": {"a": {"type": "integer"}, "b": {"type": "integer"}},
            "required": ["a", "b"],
        },
    },
}
QUESTION = [{"role": "user", "content": "What is three plus one?"}]


def _calls(client: openai.OpenAI, max_tokens: int) -> tuple[list[tuple[str, str]], int]:
    answer = client.chat.completions.create(
        model=MODEL,
        messages=QUESTION,
        tools=[ADD],
        tool_choice="required",
        temperature=0,
        max_tokens=max_tokens,
    )
    found = answer.choices[0].message.tool_calls or []
    assert answer.usage is not None
    calls = [(c.function.name, c.function.arguments) for c in found]
    return calls, answer.usage.completion_tokens


def test_calls_complete_before_the_closing_are_kept(server: Server) -> None:
    client = openai.OpenAI(base_url=server.base_url.replace("/api/v1", "/v1"), api_key="x")
    natural, n_tokens = _calls(client, 400)
    assert natural, "the grammar requires a call"
    # One token short of the whole answer: the model's last token was part of the list's
    # closing, every call before it is whole.
    cut, used = _calls(client, n_tokens - 1)
    assert used == n_tokens - 1
    assert cut == natural
