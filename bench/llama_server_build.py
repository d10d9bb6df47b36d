"""Builds llama.cpp's own llama-server (and llama-bench, llama-batched-bench) from the
sources vendored in the pinned llama-cpp-python sdist, into a cache folder outside
the repository.

Usage: .venv/bin/python bench/llama_server_build.py   (prints the binary's path)
"""

from __future__ import annotations

import os
import platform
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


TOOLS = ("llama-server", "llama-bench", "llama-batched-bench")
# The same flags as the Makefile's llama-cpp-python build (no ggml AMX kernels on x86_64:
# they crash on Intel CPUs that advertise AMX), so both sides run the same kernels.
NO_AMX = "-mno-amx-tile -mno-amx-int8 -mno-amx-bf16" if platform.machine() == "x86_64" else ""
BUILD_DIR = "build-noamx" if NO_AMX else "build"


def llama_server_binary() -> Path:
    """The built llama-server, building it first if needed (about 5 minutes on 2 cores)."""
    return llama_tools() / "llama-server"


def llama_batched_bench_binary() -> Path:
    """llama.cpp's batched decode benchmark: the kernels alone, no server."""
    return llama_tools() / "llama-batched-bench"


def llama_tools() -> Path:
    """The folder of the built llama.cpp tools, building what is missing first."""
    version = LLAMA_CPP_PYTHON.split("==")[1]
    root = CACHE / f"llama_cpp_python-{version}"
    bin_dir = root / "vendor" / "llama.cpp" / BUILD_DIR / "bin"
    if all((bin_dir / tool).exists() for tool in TOOLS):
        return bin_dir
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
            BUILD_DIR,
            f"-DCMAKE_C_FLAGS={NO_AMX}",
            f"-DCMAKE_CXX_FLAGS={NO_AMX}",
            "-DLLAMA_CURL=OFF",
            "-DLLAMA_BUILD_TESTS=OFF",
            "-DLLAMA_BUILD_EXAMPLES=OFF",
            "-DLLAMA_BUILD_SERVER=ON",
            "-DCMAKE_BUILD_TYPE=Release",
        ],
        cwd=src,
    )
    jobs = str(os.cpu_count() or 2)
    _run(["cmake", "--build", BUILD_DIR, "--target", *TOOLS, "-j", jobs], cwd=src)
    return bin_dir


if __name__ == "__main__":
    print(llama_server_binary())
