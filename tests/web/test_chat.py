"""The chat view in chromium against a real server with the real default model."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import httpx
from playwright.sync_api import Page, Request, Route, expect

from tests.e2e.conftest import Server

# Records every change of the newest answer: (state, text length), to see it stream.
WATCH_ANSWER = """() => {
  window.__seen = [];
  new MutationObserver(() => {
    const a = [...document.querySelectorAll('.turn.assistant')].pop();
    if (a) window.__seen.push([a.dataset.state, a.querySelector('.text').textContent.length]);
  }).observe(document.getElementById('conversation'),
             {subtree: true, childList: true, characterData: true, attributes: true});
}"""


def _settings(page: Page, **values: str) -> None:
    for name, value in values.items():
        page.fill(f"#p-{name}", value)


def _last_answer(page: Page) -> Any:
    return page.locator(".turn.assistant").last


def test_prompt_streams_an_answer_with_its_figures(
    page: Page, web_server: Server, artifacts: Path
) -> None:
    prompt = "Name three colours."
    _settings(page, temperature="0", max_tokens="24")
    box = page.locator("#prompt")
    # Shift+Enter adds a line and sends nothing.
    box.fill("first line")
    box.press("Shift+Enter")
    box.type("second line")
    assert box.input_value() == "first line\nsecond line"
    assert page.locator(".turn").count() == 0

    page.evaluate(WATCH_ANSWER)
    box.fill(prompt)
    box.press("Enter")
    answer = _last_answer(page)
    expect(answer).to_have_attribute("data-state", "done", timeout=120_000)

    text = answer.locator(".text").text_content()
    expected = httpx.post(
        f"{web_server.base_url}/generate",
        json={"prompt": prompt, "temperature": 0, "max_tokens": 24},
        timeout=120,
    ).json()["data"]["text"]
    assert text == expected  # the tokens, joined, are the whole (greedy) answer
    # It streamed: the text grew in several steps before the answer was done.
    seen = page.evaluate("window.__seen")
    streaming_lengths = {n for state, n in seen if state == "streaming" and n > 0}
    assert len(streaming_lengths) >= 3, seen
    meta = answer.locator(".meta").text_content() or ""
    assert "tokens/s" in meta and "first token" in meta and "ms" in meta
    assert page.locator(".turn.user .text").text_content() == prompt
    expect(page.locator("#send")).to_be_enabled()
    page.screenshot(path=str(artifacts / "chat.png"), full_page=True)
    assert page.errors == []  # type: ignore[attr-defined]


def test_second_prompt_sends_the_conversation(page: Page) -> None:
    bodies: list[dict[str, Any]] = []

    def keep(request: Request) -> None:
        if request.url.endswith("/api/v1/generate"):
            bodies.append(json.loads(request.post_data or "{}"))

    page.on("request", keep)
    _settings(page, temperature="0", max_tokens="8")
    for prompt in ("My name is Ada.", "What is my name?"):
        page.fill("#prompt", prompt)
        page.click("#send")
        expect(_last_answer(page)).to_have_attribute("data-state", "done", timeout=120_000)
    first_answer = page.locator(".turn.assistant .text").first.text_content()
    assert len(bodies) == 2
    assert "history" not in bodies[0]
    assert bodies[0]["stream"] is True and bodies[0]["temperature"] == 0
    assert bodies[1]["history"] == [
        {"role": "user", "content": "My name is Ada."},
        {"role": "assistant", "content": first_answer},
    ]
    # New chat forgets it.
    page.click("#new-chat")
    assert page.locator(".turn").count() == 0


def test_stop_ends_the_answer_midway(page: Page, web_server: Server) -> None:
    before = web_server.status()["engine"]["requests_cancelled"]
    _settings(page, temperature="0", max_tokens="2000")
    page.fill("#prompt", "Count from 1 to 1000, one number per line.")
    page.keyboard.press("Tab")
    page.locator("#prompt").press("Enter")
    answer = _last_answer(page)
    page.wait_for_function(
        "() => document.querySelector('.turn.assistant .text').textContent.length > 0"
    )
    expect(page.locator("#stop")).to_be_enabled()
    # A click event, not a pointer click: while tokens stream in, the page scrolls and
    # Playwright's pointer click waits for a layout that holds still (seen: until the
    # answer had finished and Stop was disabled again).
    page.locator("#stop").dispatch_event("click")
    expect(answer).to_have_attribute("data-state", "stopped")
    assert "Stopped after" in (answer.locator(".meta").text_content() or "")
    expect(page.locator("#stop")).to_be_disabled()
    # The server saw the client go and cancelled the generation.
    deadline = time.monotonic() + 30
    while web_server.status()["engine"]["requests_cancelled"] == before:
        assert time.monotonic() < deadline, "the server never cancelled the generation"
        time.sleep(0.2)
    stopped_text = answer.locator(".text").text_content() or ""
    assert len(stopped_text) > 0
    page.wait_for_timeout(500)
    assert answer.locator(".text").text_content() == stopped_text  # nothing more arrives


def test_model_output_is_text_never_html(page: Page) -> None:
    hostile = '<img src=x onerror="window.pwned=1"><b>bold</b>'
    completion = {
        "text": hostile,
        "tokens": 3,
        "finish_reason": "stop",
        "usage": {"prompt_tokens": 1, "completion_tokens": 3, "total_tokens": 4},
        "performance": {"tokens_per_second": 1.0, "latency_ms": 1.0, "total_time_ms": 2.0},
    }
    events = [
        {"type": "token", "data": {"token": hostile[:20]}},
        {"type": "token", "data": {"token": hostile[20:]}},
        {"type": "done", "data": {"completion": completion}},
    ]
    sse = "".join(f"data: {json.dumps(e)}\n\n" for e in events)

    def fake(route: Route) -> None:  # a stand-in server answer, in addition to the real ones
        route.fulfill(status=200, content_type="text/event-stream", body=sse)

    page.route("**/api/v1/generate", fake)
    page.fill("#prompt", "hi")
    page.click("#send")
    answer = _last_answer(page)
    expect(answer).to_have_attribute("data-state", "done")
    assert answer.locator(".text").text_content() == hostile
    assert answer.locator("img, b").count() == 0
    assert page.evaluate("window.pwned") is None


def test_errors_are_shown_in_plain_words(page: Page) -> None:
    page.fill("#p-json_schema", "{not json")
    page.fill("#prompt", "hi")
    page.click("#send")
    expect(page.locator("#params-error")).to_contain_text("not valid JSON")
    assert page.locator(".turn").count() == 0  # nothing was sent
    page.fill("#p-json_schema", "")
    page.fill("#p-temperature", "5")
    page.click("#send")
    expect(page.locator("#params-error")).to_contain_text("Temperature must be between 0 and 2")

    page.fill("#p-temperature", "0.7")
    page.fill("#p-max_tokens", "2.5")
    page.click("#send")
    expect(page.locator("#params-error")).to_contain_text("Max tokens must be between 1 and 4096")
    page.fill("#p-max_tokens", "16")
    page.fill("#p-top_p", "0.33")  # not a multiple of the arrows' step, and fine
    sent: list[dict[str, Any]] = []

    def no_model(route: Route) -> None:
        sent.append(json.loads(route.request.post_data or "{}"))
        body = {
            "success": False,
            "error": {"code": "MODEL_NOT_LOADED", "message": "no model is loaded"},
        }
        route.fulfill(status=503, content_type="application/json", body=json.dumps(body))

    page.route("**/api/v1/generate", no_model)
    page.click("#send")
    answer = _last_answer(page)
    expect(answer).to_have_attribute("data-state", "error")
    expect(answer.locator(".meta")).to_contain_text("No model is loaded. Open Models")
    expect(page.locator("#params-error")).to_be_hidden()
    assert sent[0]["top_p"] == 0.33 and sent[0]["max_tokens"] == 16
