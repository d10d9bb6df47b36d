"""The browser engine's routes: the /engine page and its files, the model bytes it
downloads, and the WebSocket it attaches on (/api/v1/engine/attach).

The page runs wllama (llama.cpp in WebAssembly, WebGPU where available) from
the npm package installed by `make` into web-engine/node_modules; nothing of
wllama is in the repository. Multi-threaded WASM needs cross-origin isolation,
so every response here carries COOP/COEP/CORP headers.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import re
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Request, Response, WebSocket, WebSocketDisconnect
from fastapi.responses import FileResponse, HTMLResponse

from browser_llm.api.envelope import error_response
from browser_llm.api.services import services
from browser_llm.config import Settings
from browser_llm.core.errors import ModelNotFoundError, ValidationError
from browser_llm.engine.browser.tab import Tab

__all__ = ["api_router", "page_router", "wllama_root"]

logger = logging.getLogger(__name__)

page_router = APIRouter(tags=["browser engine"], include_in_schema=False)
api_router = APIRouter(tags=["browser engine"])

_WEB = Path(__file__).resolve().parents[2] / "web" / "engine"
_OWN_FILES = {
    "engine.js": "text/javascript",
    "runtime.js": "text/javascript",
    "webgpu.js": "text/javascript",
}
_VENDOR_TYPES = {".js": "text/javascript", ".wasm": "application/wasm"}
# wllama's Emscripten worker code, which its bundle embeds as a string: the page puts its
# WebGPU hook in front of it (web/engine/runtime.js).
_WORKER_CODE = ("worker/wllama.js", "src/wasm/wllama.js")
_MODEL_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
_ISOLATION = {
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Embedder-Policy": "require-corp",
    "Cross-Origin-Resource-Policy": "same-origin",
    "Cache-Control": "no-cache",
}
HELLO_TIMEOUT_S = 10.0
SEND_QUEUE = 1024


def wllama_root(settings: Settings) -> Path:
    """The installed @wllama/wllama package folder (web-engine/node_modules by default)."""
    if settings.wllama_dir is not None:
        return settings.wllama_dir
    repo = Path(__file__).resolve().parents[4]
    return repo / "web-engine" / "node_modules" / "@wllama" / "wllama"


_MISSING_PAGE = """<!doctype html><meta charset="utf-8"><title>Browser engine unavailable</title>
<h1>Browser engine unavailable</h1>
<p>The wllama package is not installed (<code>web-engine/node_modules</code>).</p>
<p>Install it with <code>make serve</code> (or <code>cd web-engine &amp;&amp; npm ci</code>) and
reload this page. The rest of the server works without it.</p>"""


@page_router.get("/engine")
async def engine_page(request: Request) -> Response:
    root = wllama_root(services(request).settings)
    if not (root / "esm" / "index.js").is_file():
        logger.warning("browser engine page unavailable: no wllama at %s", root)
        return HTMLResponse(_MISSING_PAGE, status_code=503, headers=_ISOLATION)
    return FileResponse(_WEB / "index.html", media_type="text/html", headers=_ISOLATION)


@page_router.get("/engine/app/{name}")
async def engine_asset(name: str) -> Response:
    media = _OWN_FILES.get(name)
    if media is None or not (_WEB / name).is_file():
        raise ModelNotFoundError(f"no such file: {name}")
    return FileResponse(_WEB / name, media_type=media, headers=_ISOLATION)


@page_router.get("/engine/vendor/{path:path}")
async def vendor_file(path: str, request: Request) -> Response:
    """wllama's ESM bundle and .wasm, from the installed package only."""
    package = wllama_root(services(request).settings)
    if path == _WORKER_CODE[0]:
        return _vendor_response(package / _WORKER_CODE[1], path)
    root = (package / "esm").resolve()
    target = (root / path).resolve()
    if not target.is_relative_to(root):
        raise ModelNotFoundError(f"no such engine file: {path}")
    return _vendor_response(target, path)


def _vendor_response(target: Path, path: str) -> Response:
    media = _VENDOR_TYPES.get(target.suffix)
    if media is None or not target.is_file():
        raise ModelNotFoundError(f"no such engine file: {path}")
    return FileResponse(target, media_type=media, headers=_ISOLATION)


_MODEL_FILE = "/engine/models/{model_id}/model.gguf"


@api_router.head(_MODEL_FILE, include_in_schema=False)
@api_router.get(
    _MODEL_FILE,
    summary="A model's GGUF bytes for the browser engine tab (Range supported; same-origin)",
)
async def model_file(model_id: str, request: Request) -> Response:
    if not _MODEL_ID.match(model_id):
        raise ValidationError("invalid model id", {"field": "model_id"})
    site = request.headers.get("sec-fetch-site")
    if site is not None and site not in ("same-origin", "none"):
        # Only the engine page of this server may read model files from a browser.
        return _forbidden(request)
    svc = services(request)
    registry = svc.registry
    entry = registry.catalog.get(model_id)
    path = registry.store.path_for(entry) if entry is not None else None
    if path is None:
        raise ModelNotFoundError(f"model '{model_id}' is not in the catalog or not on disk")
    if request.method == "GET":
        counters = svc.file_requests
        counters[model_id] = counters.get(model_id, 0) + 1
    headers = {"Cross-Origin-Resource-Policy": "same-origin", "Cache-Control": "no-store"}
    return FileResponse(path, media_type="application/octet-stream", headers=headers)


def _forbidden(request: Request) -> Response:
    return error_response(request, 403, "FORBIDDEN", "model files are served to this origin only")


@api_router.websocket("/engine/attach")
async def attach(ws: WebSocket) -> None:
    """A browser tab offers itself as the engine (see docs/browser-engine.md)."""
    svc = services(ws)
    engine = svc.browser
    limit = svc.settings.max_ws_message_bytes
    await ws.accept()
    try:
        hello = await asyncio.wait_for(_receive(ws, limit), HELLO_TIMEOUT_S)
    except (TimeoutError, WebSocketDisconnect, RuntimeError, ValueError):
        with contextlib.suppress(RuntimeError):
            await ws.close(1008, "send a hello message first")
        return
    if hello.get("type") != "hello":
        await ws.close(1008, "the first message must be hello")
        return
    out: asyncio.Queue[dict[str, Any]] = asyncio.Queue(maxsize=SEND_QUEUE)

    async def send(message: dict[str, Any]) -> None:
        out.put_nowait(message)  # QueueFull: the tab stopped reading; the engine drops it

    tab = Tab(send=send, user_agent=ws.headers.get("user-agent", "")[:200])
    data = hello.get("data")
    tab.readings.update(data if isinstance(data, dict) else {})
    sender = asyncio.create_task(_send_loop(ws, out))
    replaced = engine.attach(tab)
    if replaced is not None:
        with contextlib.suppress(Exception):
            await replaced.send({"type": "replaced"})
    await send({"type": "attached", "data": {"tab_id": tab.id, "model": engine.wanted_model_id}})
    try:
        while not sender.done():
            try:
                message = await _receive(ws, limit)
            except ValueError as exc:
                logger.warning("browser tab %s sent a bad message: %s", tab.id, exc)
                continue
            engine.on_message(tab, message)
    except (WebSocketDisconnect, RuntimeError, KeyError):
        pass
    finally:
        engine.detach(tab)
        sender.cancel()


async def _receive(ws: WebSocket, limit: int) -> dict[str, Any]:
    text = await ws.receive_text()
    if len(text) > limit:
        raise ValueError("message too large")
    try:
        message = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError("message is not JSON") from exc
    if not isinstance(message, dict):
        raise ValueError("message is not an object")
    return message


async def _send_loop(ws: WebSocket, out: asyncio.Queue[dict[str, Any]]) -> None:
    with contextlib.suppress(Exception):
        while True:
            message = await out.get()
            await ws.send_text(json.dumps(message))
            if message.get("type") == "replaced":
                await ws.close(4001, "replaced by a newer tab")
                return
            if message.get("type") == "timed_out":
                await ws.close(4002, "the tab stopped answering")
                return
