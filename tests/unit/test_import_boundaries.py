"""Imports flow downwards: engine never reaches up; the SDK never imports the server."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "src" / "browser_llm"


def imported_modules(folder: Path, pattern: str = "**/*.py") -> set[tuple[str, str]]:
    found = set()
    for path in folder.glob(pattern):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                found |= {(path.name, alias.name) for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module:
                found.add((path.name, node.module))
    return found


# Each API dialect is a package that never imports another (they share the service layer).
_DIALECTS = ("spec", "openai", "ollama", "anthropic", "responses")


@pytest.mark.parametrize(
    ("layer", "forbidden"),
    [
        ("engine", ("fastapi", "starlette", "browser_llm.api", "browser_llm.service")),
        ("grammar", ("llama_cpp", "browser_llm.engine", "browser_llm.service", "browser_llm.api")),
        ("engine/browser", ("browser_llm.engine.native", "llama_cpp")),
        *(
            (f"api/{name}", tuple(f"browser_llm.api.{o}" for o in _DIALECTS if o != name))
            for name in _DIALECTS
        ),
        ("models", ("browser_llm.api", "browser_llm.service", "browser_llm.engine", "llama_cpp")),
        ("core", ("browser_llm.api", "browser_llm.service", "browser_llm.engine", "fastapi")),
        ("service", ("browser_llm.api", "fastapi", "starlette")),
    ],
)
def test_layers_do_not_import_upwards(layer: str, forbidden: tuple[str, ...]) -> None:
    bad = {(f, m) for f, m in imported_modules(PACKAGE / layer) if m.startswith(forbidden)}
    assert not bad


def test_sdk_uses_httpx_and_itself_only() -> None:
    allowed = {"httpx", "__future__", "asyncio", "time", "json", "collections", "typing"}
    for file, module in imported_modules(PACKAGE / "client"):
        top = module.split(".")[0]
        if top == "browser_llm":
            assert module.startswith("browser_llm.client"), (file, module)
        elif file == "ws_session.py" and top == "websockets":
            continue  # WebSocket sessions only, imported lazily
        else:
            assert top in allowed, (file, module)


def _loaded_by_the_server(module: str) -> bool:
    """Whether building the app, its routes and its engine imports `module`."""
    code = (
        "import sys\n"
        "import browser_llm.cli\n"
        "from browser_llm.api.app import create_app\n"
        "from browser_llm.api.services import default_engine\n"
        "from browser_llm.config import Settings\n"
        "create_app()\n"
        "default_engine(Settings())\n"
        f"print({module!r} in sys.modules)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert out.stdout.strip() in ("True", "False"), out.stderr
    return out.stdout.strip() == "True"


def test_server_side_never_imports_llama_cpp() -> None:
    """llama.cpp lives in the engine process: building the app, its routes and services
    must not load it (a native fault there would take the server down with it)."""
    assert not _loaded_by_the_server("llama_cpp")


def test_only_the_cluster_package_imports_ray_or_redis() -> None:
    """The single-machine install has no Ray: nothing outside cluster/ may import it."""
    found = imported_modules(PACKAGE, "*.py")
    for folder in PACKAGE.iterdir():
        if folder.is_dir() and folder.name != "cluster":
            found |= imported_modules(folder)
    for file, module in found:
        assert module.split(".")[0] not in ("ray", "redis"), (file, module)


def test_the_server_never_loads_ray() -> None:
    """Even with the [cluster] extra installed, serving one machine never imports ray."""
    assert not _loaded_by_the_server("ray")


def test_only_the_child_and_the_in_process_switch_import_the_native_engine() -> None:
    """llama.cpp in this process is reached through the process boundary (engine/process/
    child.py), or in process through the one switch in the composition root."""
    allowed = {PACKAGE / "engine" / "process" / "child.py", PACKAGE / "api" / "services.py"}
    native = PACKAGE / "engine" / "native"
    for path in PACKAGE.glob("**/*.py"):
        if path in allowed or native in path.parents:
            continue
        for _, module in imported_modules(path.parent, path.name):
            assert not module.startswith("browser_llm.engine.native"), (path, module)


def test_every_package_says_what_it_is() -> None:
    for init in PACKAGE.glob("**/__init__.py"):
        doc = ast.get_docstring(ast.parse(init.read_text()))
        assert doc and doc.splitlines()[0].strip(), init  # its first line says it
