"""The web page: HTML pages at their own paths, every other file under /static/.

Files live in the package (browser_llm/web/), so there is no build step. Another page is
added by putting its HTML beside index.html and naming it in PAGES.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, HTTPException
from fastapi.responses import FileResponse, Response

__all__ = ["PAGES", "STATIC_PREFIX", "WEB_DIR", "is_web_path", "router"]

WEB_DIR = Path(__file__).resolve().parent.parent.parent / "web"
STATIC_PREFIX = "/static/"
PAGES = {"/": "index.html"}  # path -> HTML file in WEB_DIR

_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
    ".json": "application/json",
    ".wasm": "application/wasm",
    ".png": "image/png",
    ".ico": "image/x-icon",
}

# No inline script or style anywhere: everything comes from this origin's files.
# 'self' in connect-src covers same-origin fetch and ws:/wss: (CSP level 3).
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
_COMMON_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    # Revalidate each time: an upgraded server must not run a stale script.
    "Cache-Control": "no-cache",
}
_PAGE_HEADERS = {**_COMMON_HEADERS, "Content-Security-Policy": CSP, "X-Frame-Options": "DENY"}

router = APIRouter(include_in_schema=False)


def is_web_path(path: str) -> bool:
    """Paths served without an API key: the page and its files hold no secrets."""
    return path in PAGES or path.startswith(STATIC_PREFIX)


def _file(name: str, headers: dict[str, str]) -> Response:
    root = WEB_DIR.resolve()
    target = (root / name).resolve()
    # Only regular files inside the web folder with a known type: no traversal, no listing.
    if not target.is_relative_to(root) or not target.is_file() or target.suffix not in _TYPES:
        raise HTTPException(404)
    if target.suffix == ".html":  # an HTML file is a page however it is reached
        headers = _PAGE_HEADERS
    return FileResponse(target, media_type=_TYPES[target.suffix], headers=headers)


def _page_route(path: str, name: str) -> None:
    async def page() -> Response:
        return _file(name, _PAGE_HEADERS)

    # HEAD too: Claude Code and other clients probe the base URL with HEAD / first.
    router.add_api_route(path, page, methods=["GET", "HEAD"], name=f"page:{name}")


for _path, _name in PAGES.items():
    _page_route(_path, _name)


@router.get(STATIC_PREFIX + "{name:path}")
async def static_file(name: str) -> Response:
    return _file(name, _COMMON_HEADERS)
