"""The web page's files: served at / and /static/, with a strict CSP, open without a key,
never outside the web folder; and the `history` extension the chat sends."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from starlette.websockets import WebSocketDisconnect

from browser_llm.api.app import create_app
from browser_llm.api.spec.web import WEB_DIR
from browser_llm.config import Settings
from browser_llm.core.types import ChatMessage
from tests.api.conftest import LOCAL
from tests.fakes import FakeEngine


def test_page_has_a_strict_csp_and_no_inline_code(client: TestClient) -> None:
    resp = client.get("/")
    assert resp.status_code == 200
    assert resp.headers["content-type"].startswith("text/html")
    csp = resp.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "default-src 'none'" in csp
    assert "unsafe-inline" not in csp and "unsafe-eval" not in csp
    assert resp.headers["x-content-type-options"] == "nosniff"
    html = resp.text
    scripts = re.findall(r"<script\b[^>]*>(.*?)</script>", html, flags=re.S)
    assert scripts and all(body.strip() == "" for body in scripts)  # only src= scripts
    assert all("src=" in tag for tag in re.findall(r"<script\b[^>]*>", html))
    assert not re.search(r"\son[a-z]+\s*=", html)  # no inline event handlers
    assert not re.search(r"\sstyle\s*=", html)  # no inline styles either


def test_html_under_static_keeps_the_csp(client: TestClient) -> None:
    resp = client.get("/static/index.html")
    assert resp.status_code == 200
    assert "script-src 'self'" in resp.headers["content-security-policy"]


def test_every_referenced_file_is_served_with_its_type(client: TestClient) -> None:
    html = client.get("/").text
    refs = set(re.findall(r'(?:src|href)="(/static/[^"]+)"', html))
    # ES module imports between the scripts
    for js in WEB_DIR.glob("*.js"):
        refs |= {f"/static/{m}" for m in re.findall(r'from "\./([^"]+)"', js.read_text())}
    assert {"/static/main.js", "/static/app.css", "/static/chat.js"} <= refs
    types = {".js": "text/javascript", ".css": "text/css", ".svg": "image/svg+xml"}
    for ref in refs:
        resp = client.get(ref)
        assert resp.status_code == 200, ref
        assert resp.headers["content-type"].startswith(types[Path(ref).suffix]), ref
        assert resp.headers["x-content-type-options"] == "nosniff"


@pytest.mark.parametrize(
    "path",
    [
        "/static/../config.py",
        "/static/%2e%2e/config.py",
        "/static/..%2fconfig.py",
        "/static/",
        "/static/missing.js",
        "/static/%2Fetc%2Fpasswd",
    ],
)
def test_nothing_outside_the_web_folder(client: TestClient, path: str) -> None:
    resp = client.get(path)
    assert resp.status_code == 404
    assert resp.json()["error"]["code"] == "NOT_FOUND"


def test_page_is_open_without_the_key_but_the_api_is_not(tmp_path: Path) -> None:
    settings = Settings(models_dir=tmp_path / "models", api_key="s3cret-key")
    with TestClient(create_app(settings, engine=FakeEngine()), base_url=LOCAL) as c:
        assert c.get("/").status_code == 200
        assert c.get("/static/api.js").status_code == 200
        assert c.get("/api/v1/status").status_code == 401
        assert c.get("/api/v1/status", headers={"X-API-Key": "s3cret-key"}).status_code == 200
        # A foreign Host is refused for the page too (DNS rebinding).
        assert c.get("/", headers={"Host": "evil.example"}).status_code == 403


def test_static_files_are_not_rate_limited(client: TestClient) -> None:
    assert "x-ratelimit-limit" not in client.get("/static/main.js").headers
    assert "x-ratelimit-limit" in client.get("/api/v1/models").headers


def test_history_goes_before_the_prompt_as_chat_messages(
    client: TestClient, fake_engine: FakeEngine
) -> None:
    history = [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": "Hello!"},
    ]
    resp = client.post("/api/v1/generate", json={"prompt": "And you?", "history": history})
    assert resp.status_code == 200, resp.text
    sent = fake_engine.submitted[-1]
    assert sent.messages == (
        ChatMessage("system", "Be brief."),
        ChatMessage("user", "Hi"),
        ChatMessage("assistant", "Hello!"),
        ChatMessage("user", "And you?"),
    )


@pytest.mark.parametrize(
    "extra",
    [
        {"history": [{"role": "tool", "content": "x"}]},
        {"history": [{"role": "user"}]},
        {"history": [{"role": "user", "content": "x", "name": "n"}]},
        {"history": "not a list"},
        {"history": [{"role": "user", "content": "x"}], "raw": True},
    ],
)
def test_bad_history_is_400(client: TestClient, extra: dict[str, object]) -> None:
    resp = client.post("/api/v1/generate", json={"prompt": "Hi", **extra})
    assert resp.status_code == 400, resp.text
    error = resp.json()["error"]
    assert error["code"] == "VALIDATION_ERROR"
    assert "history" in error["message"]


def test_the_pages_own_websocket_is_accepted_on_an_allowed_host(tmp_path: Path) -> None:
    settings = Settings(
        models_dir=tmp_path / "models", allowed_hosts=["llm.lan"], api_key="s3cret-key"
    )
    app = create_app(settings, engine=FakeEngine())
    with TestClient(app, base_url="http://llm.lan:3000") as c:
        same = {"Origin": "http://llm.lan:3000", "Host": "llm.lan:3000"}
        with c.websocket_connect("/api/v1/ws?api_key=s3cret-key", headers=same) as ws:
            ws.send_json({"type": "subscribe", "id": "s", "payload": {"events": ["log"]}})
        foreign = {"Origin": "http://evil.example", "Host": "llm.lan:3000"}
        with (
            pytest.raises(WebSocketDisconnect),
            c.websocket_connect("/api/v1/ws?api_key=s3cret-key", headers=foreign) as ws,
        ):
            ws.receive_text()
