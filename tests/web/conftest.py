"""Playwright (Python) driving Debian's chromium against real server processes.

`make test` installs chromium with apt-get when it is missing; Playwright's own browser
download is not used (it cannot run on these machines)."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright

from tests.chromium import CHROMIUM, CHROMIUM_FLAGS
from tests.e2e.conftest import Server, served

pytestmark = pytest.mark.e2e

# Two shared cores: a page can take a while to react when other work runs. Generous waits,
# no timing assertions.
expect.set_options(timeout=20_000)

ARTIFACTS = Path(__file__).parent / "artifacts"  # screenshots, kept after the run (gitignored)
CHROMIUM_ARGS = ["--headless", *CHROMIUM_FLAGS]


def chromium_path() -> str:
    path = shutil.which("chromium") or CHROMIUM
    if not Path(path).exists():
        pytest.fail("chromium is missing: `make test` installs it (apt-get install chromium)")
    return path


# Package scope: one sync Playwright may be open at a time, and tests/browser_engine
# opens its own; a session-wide one here broke it when tests/web ran first.
@pytest.fixture(scope="package")
def browser() -> Iterator[Browser]:
    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=chromium_path(), args=CHROMIUM_ARGS)
        try:
            yield b
        finally:
            b.close()


@pytest.fixture(scope="session")
def artifacts() -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    print(f"\nweb test screenshots: {ARTIFACTS}")
    return ARTIFACTS


@pytest.fixture(scope="session")
def web_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """The default model loaded."""
    with served(tmp_path_factory.mktemp("web")) as srv:
        yield srv


def root_url(server: Server) -> str:
    return server.base_url.removesuffix("/api/v1")


def open_page(browser: Browser, server: Server, view: str = "chat", width: int = 1280) -> Page:
    page = browser.new_page(viewport={"width": width, "height": 900})
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.on(
        "console",
        lambda msg: errors.append(msg.text) if msg.type == "error" else None,
    )
    page.errors = errors  # type: ignore[attr-defined]
    page.goto(f"{root_url(server)}/#{view}")
    page.wait_for_selector("body[data-ready='true']")
    return page


@pytest.fixture
def page(browser: Browser, web_server: Server) -> Iterator[Page]:
    p = open_page(browser, web_server)
    try:
        yield p
    finally:
        p.close()
