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
from browser_llm.api.middleware import API_PREFIX
from browser_llm.config import Settings
from browser_llm.core.errors import ModelNotFoundError, ValidationError
from browser_llm.engine.base import Engine
from browser_llm.engine.browser_engine import BrowserEngine, Tab
from browser_llm.service.registry import ModelRegistry

__all__ = [
    "api_router",
    "browser_status",
    "build_browser_engine",
    "load_startup_model",
    "page_router",
    "wllama_root",
]

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


def model_file_path(model_id: str) -> str:
    # wllama's cache wants URLs that end in .gguf.
    return f"{API_PREFIX}/engine/models/{model_id}/model.gguf"


def build_browser_engine(settings: Settings, native: Engine) -> BrowserEngine:
    return BrowserEngine(
        settings.context_size,
        model_url=model_file_path,
        fallback=native if settings.engine_fallback else None,
        backend=settings.browser_backend,
        tab_timeout_s=settings.browser_tab_timeout_s,
    )


_MISSING_PAGE = """<!doctype html><meta charset="utf-8"><title>Browser engine unavailable</title>
<h1>Browser engine unavailable</h1>
<p>The wllama package is not installed (<code>web-engine/node_modules</code>).</p>
<p>Install it with <code>make serve</code> (or <code>cd web-engine &amp;&amp; npm ci</code>) and
reload this page. The rest of the server works without it.</p>"""


@page_router.get("/engine")
async def engine_page(request: Request) -> Response:
    root = wllama_root(request.app.state.settings)
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
    package = wllama_root(request.app.state.settings)
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
    registry: ModelRegistry = request.app.state.registry
    entry = registry.catalog.get(model_id)
    path = registry.store.path_for(entry) if entry is not None else None
    if path is None:
        raise ModelNotFoundError(f"model '{model_id}' is not in the catalog or not on disk")
    if request.method == "GET":
        counters = request.app.state.engine_file_requests
        counters[model_id] = counters.get(model_id, 0) + 1
    headers = {"Cross-Origin-Resource-Policy": "same-origin", "Cache-Control": "no-store"}
    return FileResponse(path, media_type="application/octet-stream", headers=headers)


def _forbidden(request: Request) -> Response:
    return error_response(request, 403, "FORBIDDEN", "model files are served to this origin only")


@api_router.websocket("/engine/attach")
async def attach(ws: WebSocket) -> None:
    """A browser tab offers itself as the engine (see docs/browser-engine.md)."""
    engine: BrowserEngine = ws.app.state.browser_engine
    limit: int = ws.app.state.settings.max_ws_message_bytes
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


def browser_status(state: Any) -> dict[str, Any] | None:
    """The /status `browser` block: the tab's own readings (None before the app started)."""
    engine: BrowserEngine | None = getattr(state, "browser_engine", None)
    if engine is None:
        return None
    tab = engine.tab
    readings = tab.readings if tab is not None else None
    model = engine.model if tab is not None else None
    return {
        "attached": tab is not None,
        "state": engine.state,
        "model": model.model_id if model is not None else None,
        "wanted_model": engine.wanted_model_id,
        "load_progress": engine.load_progress,
        "last_load": engine.last_load,
        "webgpu_available": readings.webgpu_available if readings else False,
        "webgpu_unavailable_reason": readings.webgpu_unavailable_reason if readings else None,
        "adapter": readings.adapter if readings else None,
        "backend": readings.backend if readings else None,
        "gpu_layers_offloaded": readings.gpu_layers_offloaded if readings else None,
        "gpu_vram_gb": readings.gpu_vram_gb if readings else None,
        "storage_quota_gb": readings.storage_quota_gb if readings else 0.0,
        "storage_used_gb": readings.storage_used_gb if readings else 0.0,
        "storage_persisted": readings.storage_persisted if readings else None,
        "webgpu_context_losses": readings.webgpu_context_losses if readings else 0,
        "memory_errors": engine.stats().memory_errors,
        "threads": readings.threads if readings else 0,
        "multi_thread": readings.multi_thread if readings else False,
        "tabs_attached_total": engine.tabs_attached_total,
        "model_file_requests": sum(state.engine_file_requests.values()),
    }


async def load_startup_model(
    registry: ModelRegistry, native: Engine, browser: BrowserEngine, settings: Settings
) -> None:
    """BROWSER_LLM_MODEL: the browser engine remembers it (a tab loads it on attach);
    the native engine loads it when it is the default or the configured fallback."""
    model_id = settings.model_to_load
    assert model_id is not None
    entry = registry.catalog.get(model_id)
    path = registry.store.path_for(entry) if entry is not None else None
    if path is not None:
        try:
            await browser.want(model_id, str(path))
        except Exception as exc:
            logger.warning("the browser engine cannot use %s: %s", model_id, exc)
    if settings.engine == "native":
        # A model on disk is loaded before serving; one to download loads in the
        # background (/status says 'loading') so the server answers meanwhile.
        if entry is not None and registry.store.is_local(entry):
            await registry.load(model_id)
        else:
            await registry.start_load(model_id)
    elif settings.engine_fallback and path is not None:
        await native.load(model_id, str(path))
