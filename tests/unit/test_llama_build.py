"""The installed llama.cpp holds no AMX tile instructions on x86_64.

ggml's AMX kernels crash with SIGILL on Intel CPUs that advertise AMX (upstream llama.cpp
PR 26954), so the Makefile builds without them. This reads the built library, not the
CPU: it fails on an AMD machine too if the flags stop reaching the compiler.
"""

from __future__ import annotations

import importlib.util
import platform
import re
import shutil
from pathlib import Path

import pytest

from tests import processes

AMX = re.compile(r"\b(tilezero|tileloadd|tileloaddt1|tilestored|ldtilecfg|sttilecfg|tdpb\w+)\b")


def _cpu_libraries() -> list[Path]:
    spec = importlib.util.find_spec("llama_cpp")  # finds the package without loading it
    assert spec is not None and spec.submodule_search_locations
    lib = Path(next(iter(spec.submodule_search_locations))) / "lib"
    return sorted(lib.glob("libggml-cpu*.so*")) or sorted(lib.glob("libggml*.so*"))


@pytest.mark.skipif(platform.machine() != "x86_64", reason="AMX is an x86_64 extension")
def test_installed_ggml_cpu_has_no_amx_instructions() -> None:
    objdump = shutil.which("objdump")
    assert objdump, "objdump (binutils) is needed to read the library"
    libraries = _cpu_libraries()
    assert libraries, "no libggml-cpu in the installed llama_cpp package"
    for library in libraries:
        text = processes.run(
            [objdump, "-d", "--no-show-raw-insn", str(library)],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        # The disassembly is real: the matrix kernels' vector code is there.
        assert text.count("vfmadd") > 100, library
        found = sorted(set(AMX.findall(text)))
        assert not found, f"{library.name} holds AMX instructions {found}: rebuild with make"
