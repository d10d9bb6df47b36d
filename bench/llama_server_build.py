"""Builds llama.cpp's own llama-server from the sources vendored in the pinned
llama-cpp-python sdist, into a cache folder outside the repository.

Usage: .venv/bin/python bench/llama_server_build.py   (prints the binary's path)
"""

from __future__ import annotations

import os
import subprocess
import sys
import tarfile
from pathlib import Path

LLAMA_CPP_PYTHON = "llama-cpp-python==0.3.36"
CACHE = Path(
    os.environ.get("BROWSER_LLM_BENCH_CACHE", Path.home() / ".cache" / "browser-llm-bench")
)


def _run(cmd: list[str], cwd: Path | None = None) -> None:
    print("+", " ".join(cmd), file=sys.stderr, flush=True)
    subprocess.run(cmd, cwd=cwd, check=True)


def llama_server_binary() -> Path:
    """The built llama-server, building it first if needed (about 5 minutes on 2 cores)."""
    version = LLAMA_CPP_PYTHON.split("==")[1]
    root = CACHE / f"llama_cpp_python-{version}"
    binary = root / "vendor" / "llama.cpp" / "build" / "bin" / "llama-server"
    if binary.exists():
        return binary
    CACHE.mkdir(parents=True, exist_ok=True)
    sdist = CACHE / f"llama_cpp_python-{version}.tar.gz"
    if not sdist.exists():
        _run(
            [
                sys.executable,
                "-m",
                "pip",
                "download",
                "--no-deps",
                "--no-binary",
                "llama-cpp-python",
                "--disable-pip-version-check",
                "-d",
                str(CACHE),
                LLAMA_CPP_PYTHON,
            ]
        )
    if not root.exists():
        with tarfile.open(sdist) as tar:
            tar.extractall(CACHE, filter="data")
    src = root / "vendor" / "llama.cpp"
    _run(
        [
            "cmake",
            "-B",
            "build",
            "-DLLAMA_CURL=OFF",
            "-DLLAMA_BUILD_TESTS=OFF",
            "-DLLAMA_BUILD_EXAMPLES=OFF",
            "-DLLAMA_BUILD_SERVER=ON",
            "-DCMAKE_BUILD_TYPE=Release",
        ],
        cwd=src,
    )
    jobs = str(os.cpu_count() or 2)
    _run(
        ["cmake", "--build", "build", "--target", "llama-server", "llama-bench", "-j", jobs],
        cwd=src,
    )
    return binary


if __name__ == "__main__":
    print(llama_server_binary())
