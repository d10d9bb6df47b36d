"""The models view and the dashboard in chromium against real servers."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, Page, Route, expect

from tests.e2e.conftest import Server, served
from tests.web.conftest import open_page

MODEL = "smollm2-135m-instruct-q4"
LOAD = re.compile("^Load ")  # not "Unload ..."

# Records the progress block of a card each time it changes: (phase, progress value).
WATCH_PROGRESS = """(id) => {
  window.__progress = [];
  new MutationObserver(() => {
    const card = document.querySelector(`[data-model-id="${id}"]`);
    const block = card && card.querySelector('.progress');
    if (block) {
      const bar = block.querySelector('progress');
      window.__progress.push([block.dataset.phase, bar.hasAttribute('value') ? bar.value : null]);
    }
  }).observe(document.getElementById('model-list'), {subtree: true, childList: true});
}"""


@pytest.fixture(scope="module")
def idle_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    with served(tmp_path_factory.mktemp("idle"), BROWSER_LLM_MODEL="none") as srv:
        yield srv


def test_load_a_model_and_watch_progress_reach_the_end(
    browser: Browser, idle_server: Server, artifacts: Path
) -> None:
    page = open_page(browser, idle_server, "models")
    card = page.locator(f"[data-model-id='{MODEL}']")
    expect(card).to_contain_text("SmolLM2")
    expect(card.locator(".facts")).to_contain_text("Size")
    expect(card.locator(".caps li").first).to_be_visible()
    assert card.locator(".badge.loaded").count() == 0
    expect(page.locator("#server-state")).to_contain_text("no model loaded")

    page.evaluate(WATCH_PROGRESS, MODEL)
    card.get_by_role("button", name=LOAD).click()
    progress = card.locator(".progress")
    expect(progress).to_have_attribute("data-phase", "done", timeout=120_000)
    assert card.locator("progress").evaluate("bar => bar.value") == 1
    expect(card.locator(".progress-text")).to_contain_text("Loaded in")
    phases = [phase for phase, _ in page.evaluate("window.__progress")]
    assert phases[0] == "loading" and phases[-1] == "done", phases
    # Marked loaded, here and in the header; the server agrees.
    expect(card.locator(".badge.loaded")).to_have_text("Loaded")
    expect(card).to_have_class("model is-loaded")
    expect(page.locator("#server-state")).to_contain_text(f"ready · {MODEL}")
    assert idle_server.status()["model"]["id"] == MODEL
    page.screenshot(path=str(artifacts / "models.png"), full_page=True)

    card.get_by_role("button", name=re.compile("^Unload ")).click()
    expect(card.get_by_role("button", name=LOAD)).to_be_visible()
    assert idle_server.status()["model"] is None
    assert page.errors == []  # type: ignore[attr-defined]
    page.close()


def test_a_failed_load_is_explained(browser: Browser, idle_server: Server) -> None:
    page = open_page(browser, idle_server, "models")
    failure = {
        "success": False,
        "error": {
            "code": "MODEL_LOAD_FAILED",
            "message": "model file is missing",
            "details": {"reason": "not_downloaded"},
        },
    }

    def fail(route: Route) -> None:  # a stand-in answer, in addition to the real load above
        route.fulfill(status=500, content_type="application/json", body=json.dumps(failure))

    page.route(re.compile(r"/models/[^/]+/load(\?.*)?$"), fail)
    card = page.locator(f"[data-model-id='{MODEL}']")
    card.get_by_role("button", name=LOAD).click()
    expect(card.locator(".progress")).to_have_attribute("data-phase", "error")
    expect(card.get_by_role("alert")).to_have_text(
        "The model file is not on disk yet: download it first."
    )
    page.close()


def test_dashboard_chart_changes_after_a_request(
    page: Page, web_server: Server, artifacts: Path
) -> None:
    page.goto(page.url.split("#")[0] + "#dashboard")
    expect(page.locator("#live-state")).to_have_attribute("data-ws", "open")
    expect(page.locator("#status-figures")).to_contain_text("Requests")
    # The threads llama.cpp runs on (fewer, "degraded", while other programs hold cores).
    expect(page.locator("#status-figures")).to_contain_text("CPU threads")
    chart = page.locator("#chart-tps")
    points = int(chart.get_attribute("data-points") or "0")
    ttft_points = int(page.locator("#chart-ttft").get_attribute("data-points") or "0")
    pixels = chart.locator("canvas").evaluate("c => c.toDataURL()")

    resp = httpx.post(
        f"{web_server.base_url}/generate",
        json={"prompt": "Say hello.", "max_tokens": 16, "temperature": 0},
        timeout=120,
    )
    assert resp.status_code == 200
    expect(chart).not_to_have_attribute("data-points", str(points))
    assert int(chart.get_attribute("data-points") or "0") == points + 1
    assert int(page.locator("#chart-ttft").get_attribute("data-points") or "0") == ttft_points + 1
    assert chart.locator("canvas").evaluate("c => c.toDataURL()") != pixels
    expect(chart.locator(".latest")).to_contain_text("tokens/s")
    # The status tick (every 5 s) feeds the queue depth chart.
    expect(page.locator("#chart-queue")).not_to_have_attribute("data-points", "0", timeout=15_000)
    page.screenshot(path=str(artifacts / "dashboard.png"), full_page=True)


def test_logs_follow_the_level_filter(page: Page, web_server: Server) -> None:
    page.goto(page.url.split("#")[0] + "#dashboard")
    expect(page.locator("#live-state")).to_have_attribute("data-ws", "open")
    httpx.post(
        f"{web_server.base_url}/generate",
        json={"prompt": "Hi", "max_tokens": 4},
        timeout=120,
    )
    logs = page.locator("#logs li")
    expect(logs.first).to_be_visible()
    levels = set(logs.evaluate_all("items => items.map(i => i.dataset.level)"))
    assert levels and levels <= {"info", "warn", "error"}
    page.select_option("#log-level", "error")
    page.wait_for_function(
        "() => [...document.querySelectorAll('#logs li')].every(i => i.dataset.level === 'error')"
    )
    if logs.count() == 0:
        expect(page.locator("#logs-empty")).to_be_visible()
    page.select_option("#log-level", "info")
    expect(logs.first).to_be_visible()


@pytest.mark.parametrize("view", ["chat", "models", "dashboard"])
def test_usable_at_phone_width(
    browser: Browser, web_server: Server, artifacts: Path, view: str
) -> None:
    page = open_page(browser, web_server, view, width=375)
    page.wait_for_timeout(300)  # let the lists render before measuring
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 375, f"{view} scrolls sideways at 375 px: {width}"
    page.screenshot(path=str(artifacts / f"{view}-375px.png"), full_page=True)
    page.close()


def test_the_page_asks_for_the_api_key(browser: Browser, tmp_path: Path) -> None:
    with served(tmp_path, BROWSER_LLM_MODEL="none", BROWSER_LLM_API_KEY="s3cret-key") as srv:
        page = open_page(browser, srv, "dashboard")
        dialog = page.locator("#key-dialog")
        expect(dialog).to_be_visible()
        page.fill("#api-key", "wrong-key")
        page.keyboard.press("Enter")
        expect(page.locator("#key-error")).to_contain_text("not accepted")
        page.fill("#api-key", "s3cret-key")
        page.click("#key-save")
        expect(dialog).to_be_hidden()
        expect(page.locator("#server-state")).to_contain_text("idle")
        assert page.evaluate("sessionStorage.getItem('browser-llm.api-key')") == "s3cret-key"
        # The WebSocket carries the key too.
        expect(page.locator("#live-state")).to_have_attribute("data-ws", "open", timeout=40_000)
        expect(page.locator("#status-figures")).to_contain_text("State")
        page.close()
