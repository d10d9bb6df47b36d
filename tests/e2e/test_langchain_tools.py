"""An agent framework, unchanged: LangChain's ChatOpenAI.bind_tools against the server,
a tool-calling loop on the real engine with the small default model."""

from __future__ import annotations

import langchain_openai
from langchain_core import messages
from langchain_core.tools import tool

from browser_llm.config import DEFAULT_MODEL_ID as MODEL
from tests.e2e.conftest import Server


@tool
def multiply(a: int, b: int) -> int:
    """Multiply two integers."""
    return a * b


def test_bind_tools_loop(server: Server) -> None:
    llm = langchain_openai.ChatOpenAI(
        base_url=server.base_url.replace("/api/v1", "/v1"),
        api_key="unused",
        model=MODEL,
        temperature=0,
        max_tokens=64,
        max_retries=0,
    )
    forced = llm.bind_tools([multiply], tool_choice="multiply")
    history = [messages.HumanMessage("What is 6 times 7?")]
    answer = forced.invoke(history)
    assert answer.tool_calls, answer
    call = answer.tool_calls[0]
    assert call["name"] == "multiply"
    assert isinstance(call["args"]["a"], int) and isinstance(call["args"]["b"], int)
    result = multiply.invoke(call["args"])
    history += [answer, messages.ToolMessage(str(result), tool_call_id=call["id"])]
    final = llm.bind_tools([multiply], tool_choice="none").invoke(history)
    assert isinstance(final.content, str) and final.content
    assert not final.tool_calls
